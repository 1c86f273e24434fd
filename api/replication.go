package api

import (
	"net/http"
	"slices"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// Where the lag figures of /replication/status come from.
const (
	lagFromPrimary = "pg_stat_replication" // this node is the primary
	lagFromGossip  = "gossip"              // what each replica says about itself
)

type standbyStatus struct {
	NodeID   int           `json:"node_id"`
	Name     string        `json:"name"`
	Liveness mesh.Liveness `json:"liveness"`
	// State is "streaming", a WAL receiver or walsender state, or
	// "stopped".
	State            string  `json:"state"`
	SyncState        string  `json:"sync_state"`
	ClientAddr       string  `json:"client_addr,omitempty"`
	WriteLagBytes    uint64  `json:"write_lag_bytes"`
	FlushLagBytes    uint64  `json:"flush_lag_bytes"`
	ReplayLagBytes   uint64  `json:"replay_lag_bytes"`
	WriteLagSeconds  float64 `json:"write_lag_seconds"`
	FlushLagSeconds  float64 `json:"flush_lag_seconds"`
	ReplayLagSeconds float64 `json:"replay_lag_seconds"`
	// Detached: streaming was stopped on purpose (POST
	// /replication/stop); never a failover candidate nor synchronous.
	Detached bool `json:"detached"`
}

// otherClient is a pg_stat_replication row that matches no member: a
// pg_basebackup, pg_receivewal or a forgotten standby. Worth seeing, not
// worth mistaking for a member.
type otherClient struct {
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
}

type replicationStatus struct {
	PrimaryNodeID int             `json:"primary_node_id"`
	SelfNodeID    int             `json:"self_node_id"`
	LagSource     string          `json:"lag_source"`
	Standbys      []standbyStatus `json:"standbys"`
	OtherClients  []otherClient   `json:"other_clients"`
}

// replicationOf builds the replication picture from the gossiped view plus
// the local check. On the primary, its own pg_stat_replication is the
// authority for state, sync state and lag (rows are matched to members by
// application_name == node name); anywhere else, each replica's gossiped
// state is the best there is.
func replicationOf(v *view, local pg.Health, selfID int) replicationStatus {
	rs := replicationStatus{
		PrimaryNodeID: v.primaryID(),
		SelfNodeID:    selfID,
		LagSource:     lagFromGossip,
		Standbys:      []standbyStatus{},
		OtherClients:  []otherClient{},
	}
	onPrimary := localRole(local) == mesh.RolePrimary
	rows := map[string]*pg.Standby{}
	if onPrimary {
		rs.LagSource = lagFromPrimary
		for i := range local.Standbys {
			sb := &local.Standbys[i]
			if _, dup := rows[sb.ApplicationName]; !dup {
				rows[sb.ApplicationName] = sb
			}
		}
	}
	matched := map[string]bool{}
	for i := range v.members {
		m := &v.members[i]
		st := &m.State
		isSelf := m.Self || (selfID != 0 && st.NodeID == selfID)
		if isSelf && onPrimary {
			continue
		}
		row := rows[st.Name]
		if row != nil {
			matched[st.Name] = true
		}
		if m.Liveness == mesh.Left && row == nil {
			continue
		}
		// A member is listed as a standby if it says it is one, or if the
		// primary sees it streaming (its gossip may lag behind). For this
		// node the local check is fresher than its own gossip.
		role := st.Role
		if isSelf {
			role = localRole(local)
		}
		if role != mesh.RoleReplica && row == nil {
			continue
		}
		if i == v.primary && row == nil {
			continue
		}
		sb := standbyStatus{
			NodeID:           st.NodeID,
			Name:             st.Name,
			Liveness:         livenessOr(m.Liveness),
			SyncState:        "unknown",
			WriteLagBytes:    st.LagBytes,
			FlushLagBytes:    st.LagBytes,
			ReplayLagBytes:   st.LagBytes,
			WriteLagSeconds:  finite(st.LagSeconds),
			FlushLagSeconds:  finite(st.LagSeconds),
			ReplayLagSeconds: finite(st.LagSeconds),
		}
		switch {
		case row != nil:
			sb.State = row.State
			sb.SyncState = row.SyncState
			sb.ClientAddr = row.ClientAddr
			sb.WriteLagBytes, sb.FlushLagBytes, sb.ReplayLagBytes = row.WriteLagBytes, row.FlushLagBytes, row.ReplayLagBytes
			sb.WriteLagSeconds = finite(row.WriteLagSeconds)
			sb.FlushLagSeconds = finite(row.FlushLagSeconds)
			sb.ReplayLagSeconds = finite(row.ReplayLagSeconds)
		case onPrimary:
			// Not in our pg_stat_replication: whatever it gossips, it
			// is not replicating from us.
			sb.State = "stopped"
		case isSelf:
			sb.State = receiverState(local)
		case st.Streaming:
			sb.State = "streaming"
		default:
			sb.State = "stopped"
		}
		rs.Standbys = append(rs.Standbys, sb)
	}
	for i := range local.Standbys {
		sb := &local.Standbys[i]
		if onPrimary && !matched[sb.ApplicationName] {
			rs.OtherClients = append(rs.OtherClients, otherClient{
				ApplicationName: sb.ApplicationName,
				ClientAddr:      sb.ClientAddr,
				State:           sb.State,
				SyncState:       sb.SyncState,
			})
		}
	}
	return rs
}

func (s *server) handleReplicationStatus(w http.ResponseWriter, r *http.Request) {
	v := s.snapshot()
	rs := replicationOf(&v, s.src.LocalHealth(), s.src.Node().NodeID)
	if es, ok := s.src.(ElectionSource); ok {
		detached := es.Election().Detached
		for i := range rs.Standbys {
			rs.Standbys[i].Detached = slices.Contains(detached, rs.Standbys[i].NodeID)
		}
	}
	s.writeEnvelope(w, r, http.StatusOK, rs, "")
}
