package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ramd/ramd/mesh"
)

// nodeStatus is one member as /cluster/status reports it.
type nodeStatus struct {
	NodeID     int               `json:"node_id"`
	Name       string            `json:"name"`
	Role       mesh.Role         `json:"role"`
	State      mesh.Liveness     `json:"state"`
	Healthy    bool              `json:"healthy"`
	PGRunning  bool              `json:"pg_running"`
	DataState  mesh.DataState    `json:"data_state"`
	Timeline   uint32            `json:"timeline"`
	LSN        string            `json:"lsn"`
	LSNBytes   uint64            `json:"lsn_bytes"`
	ReplayLSN  string            `json:"replay_lsn"`
	LagBytes   uint64            `json:"lag_bytes"`
	LagSeconds float64           `json:"lag_seconds"`
	Streaming  bool              `json:"streaming"`
	PGVersion  string            `json:"pg_version"`
	APIURL     string            `json:"api_url"`
	PGHost     string            `json:"pg_host"`
	PGPort     int               `json:"pg_port"`
	MeshAddr   string            `json:"mesh_addr"`
	Tags       map[string]string `json:"tags"`
	LastSeenMs int64             `json:"last_seen_ms"`
	Self       bool              `json:"self"`
}

type clusterStatus struct {
	ClusterName   string       `json:"cluster_name"`
	PrimaryNodeID int          `json:"primary_node_id"`
	SelfNodeID    int          `json:"self_node_id"`
	Nodes         []nodeStatus `json:"nodes"`
	Warnings      []string     `json:"warnings"`
	// Election fields, present when the source takes part in one.
	FencingToken      uint64 `json:"fencing_token"`
	CoordinatorNodeID int    `json:"coordinator_node_id"`
	FailoverPhase     string `json:"failover_phase,omitempty"`
	Maintenance       bool   `json:"maintenance"`
	// Synchronous replication as the cluster records it: a failover
	// promotes only a replica holding every commit that
	// synchronous_node_count of synchronous_standbys acknowledged.
	SynchronousMode      string `json:"synchronous_mode"`
	SynchronousStandbys  []int  `json:"synchronous_standbys"`
	SynchronousNodeCount int    `json:"synchronous_node_count"`
	// Switchover is a pending (possibly scheduled) switchover.
	Switchover *PendingSwitchover `json:"switchover,omitempty"`
	// Election is the backend ("quorum" or "pglock");
	// CoordinationUnreachable, with pglock, why its coordination database
	// counts as unreachable (no failover possible meanwhile).
	Election                string `json:"election,omitempty"`
	CoordinationUnreachable string `json:"coordination_unreachable,omitempty"`
}

func (v *view) nodeStatus(m *mesh.Member) nodeStatus {
	st := &m.State
	return nodeStatus{
		NodeID: st.NodeID,
		Name:   st.Name,
		// A member that is not alive keeps its last gossiped role; state
		// and healthy say how far to trust it.
		Role:       roleOr(st.Role),
		State:      livenessOr(m.Liveness),
		Healthy:    m.Liveness == mesh.Alive && st.Healthy,
		PGRunning:  st.PGRunning,
		DataState:  st.DataState,
		Timeline:   st.Timeline,
		LSN:        formatLSN(st.LSN),
		LSNBytes:   st.LSN,
		ReplayLSN:  formatLSN(st.ReplayLSN),
		LagBytes:   st.LagBytes,
		LagSeconds: finite(st.LagSeconds),
		Streaming:  st.Streaming,
		PGVersion:  st.PGVersion,
		APIURL:     st.APIURL,
		PGHost:     st.PGHost,
		PGPort:     st.PGPort,
		MeshAddr:   m.Addr,
		Tags:       tagsOrEmpty(st.Tags),
		LastSeenMs: v.lastSeenMs(m),
		Self:       m.Self,
	}
}

func (s *server) clusterStatus(v *view) clusterStatus {
	node := s.src.Node()
	cs := clusterStatus{
		ClusterName:   node.ClusterName,
		PrimaryNodeID: v.primaryID(),
		SelfNodeID:    node.NodeID,
		Nodes:         make([]nodeStatus, len(v.members)),
		Warnings:      v.warnings(),
	}
	for i := range v.members {
		cs.Nodes[i] = v.nodeStatus(&v.members[i])
	}
	if es, ok := s.src.(ElectionSource); ok {
		e := es.Election()
		cs.FencingToken, cs.CoordinatorNodeID, cs.FailoverPhase, cs.Maintenance = e.Token, e.CoordinatorNodeID, e.Phase, e.Maintenance
		cs.SynchronousMode, cs.SynchronousStandbys, cs.SynchronousNodeCount = e.SyncMode, e.SyncStandbys, e.SyncCount
		cs.Switchover = e.Switchover
		cs.Election, cs.CoordinationUnreachable = e.Backend, e.CoordinationUnreachable
		if cs.SynchronousMode == "" {
			cs.SynchronousMode = "off"
		}
		if cs.SynchronousStandbys == nil {
			cs.SynchronousStandbys = []int{}
		}
		if e.Bootstrapped {
			// The replicated decision names the primary; report it only
			// while that node is alive and serves as primary, so a load
			// balancer or script never acts on a dead one.
			cs.PrimaryNodeID = 0
			for _, n := range cs.Nodes {
				if n.NodeID == e.PrimaryNodeID && n.State == mesh.Alive && n.Role == mesh.RolePrimary {
					cs.PrimaryNodeID = n.NodeID
				}
			}
		}
	}
	return cs
}

// cachedBody is an encoded /cluster/status envelope, valid while the view
// key is unchanged and for at most statusCacheTTL.
type cachedBody struct {
	key     uint64
	expires time.Time
	body    []byte
}

// handleClusterStatus is the hottest read endpoint (dashboards, ramctl and
// peers poll it), so its encoded answer is reused while the view is
// unchanged, for at most statusCacheTTL. The key is the Source's view
// version when it has one (then a hit does not even copy the view), else a
// fingerprint of the members' state versions and liveness. Concurrent
// misses each rebuild, which is cheaper than making them wait on one
// another.
func (s *server) handleClusterStatus(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	var members []mesh.Member
	var key uint64
	if s.versioner != nil {
		// Read the version before the view: if the view moves in
		// between, the body is filed under the older version and the
		// next request rebuilds.
		key = s.versioner.ViewVersion()
	} else {
		members = s.src.Members()
		key = fingerprint(members)
	}
	if c := s.statusCache.Load(); c != nil && c.key == key && now.Before(c.expires) {
		writeJSON(w, r, http.StatusOK, c.body)
		return
	}
	if s.versioner != nil {
		members = s.src.Members()
	}
	v := newView(members, now)
	env := envelope{Success: true, Data: s.clusterStatus(&v), Timestamp: formatTimestamp(now)}
	buf, err := s.encode(&env)
	if err != nil {
		s.writeEnvelope(w, r, http.StatusOK, env.Data, "") // reports the failure
		return
	}
	// The cached body must outlive the pooled buffer.
	body := append([]byte(nil), buf.Bytes()...)
	s.putBuffer(buf)
	s.statusCache.Store(&cachedBody{key: key, expires: now.Add(statusCacheTTL), body: body})
	writeJSON(w, r, http.StatusOK, body)
}

// fingerprint summarises what makes one view differ from another: each
// member's identity, state version (NodeState's (StartedAt, Version)
// order), liveness and last contact. Any gossip update or liveness change
// moves it. A Source that changed a state without bumping its version
// would be served a stale answer for at most statusCacheTTL.
func fingerprint(ms []mesh.Member) uint64 {
	// FNV-1a over 64-bit words, then a final avalanche: allocation-free
	// and plenty against accidental equality.
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(x uint64) { h = (h ^ x) * prime }
	mix(uint64(len(ms)))
	for i := range ms {
		m := &ms[i]
		mix(uint64(m.State.NodeID))
		mix(uint64(m.State.StartedAt))
		mix(m.State.Version)
		mix(uint64(m.State.ProducedAt))
		mix(uint64(m.LastSeen.UnixNano()))
		if m.Self {
			mix(1)
		}
		for j := 0; j < len(m.Liveness); j++ {
			mix(uint64(m.Liveness[j]))
		}
		mix(0xFF) // separator: "dead"+next differs from "de"+...
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (s *server) handleClusterNode(w http.ResponseWriter, r *http.Request) {
	raw := mux.Vars(r)["id"]
	id, err := strconv.Atoi(raw)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "invalid node id %q: must be an integer", raw)
		return
	}
	v := s.snapshot()
	if i := v.find(id); i >= 0 {
		s.writeEnvelope(w, r, http.StatusOK, v.nodeStatus(&v.members[i]), "")
		return
	}
	s.writeError(w, r, http.StatusNotFound, "node %d not found", id)
}

// Cluster health verdicts.
const (
	clusterHealthy  = "healthy"
	clusterDegraded = "degraded"
	clusterFailed   = "failed"
)

type clusterHealth struct {
	Status        string   `json:"status"`
	ClusterName   string   `json:"cluster_name"`
	PrimaryNodeID int      `json:"primary_node_id"`
	Reasons       []string `json:"reasons"`
	NodesTotal    int      `json:"nodes_total"`
	NodesAlive    int      `json:"nodes_alive"`
	NodesHealthy  int      `json:"nodes_healthy"`
	// SecurityFindings are weaknesses of this node's setup (see
	// SecurityReporter); they do not change Status, which is about
	// availability.
	SecurityFindings []SecurityFinding `json:"security_findings"`
}

// SecurityFinding is one weakness of a node's setup, e.g. gossip in
// plaintext on a network address.
type SecurityFinding struct {
	NodeID int `json:"node_id"`
	// Check names the finding: "gossip_encryption", "api_tls".
	Check   string `json:"check"`
	Message string `json:"message"`
}

// SecurityReporter may be implemented by a Source: its findings appear in
// /api/v1/cluster/health.
type SecurityReporter interface {
	SecurityFindings() []SecurityFinding
}

// assessCluster judges the cluster from the view. failed: no alive healthy
// primary, or more than one primary (writes could go to either). degraded:
// one good primary, but some member that has not left is not alive, not
// healthy, not streaming or of unknown role. Left members are ignored: they
// said goodbye.
func assessCluster(v *view) clusterHealth {
	h := clusterHealth{PrimaryNodeID: v.primaryID(), Reasons: []string{}}
	failed := false
	switch len(v.claimants) {
	case 0:
		failed = true
		h.Reasons = append(h.Reasons, "no alive primary")
	case 1:
		if p := &v.members[v.primary]; !p.State.Healthy {
			failed = true
			h.Reasons = append(h.Reasons, "primary "+nodeLabel(&p.State)+" is not healthy")
		}
	default:
		failed = true
		h.Reasons = append(h.Reasons, multiplePrimaries(v.claimants))
	}
	for i := range v.members {
		m := &v.members[i]
		if m.Liveness == mesh.Left {
			continue
		}
		h.NodesTotal++
		if m.Liveness == mesh.Alive {
			h.NodesAlive++
			if m.State.Healthy {
				h.NodesHealthy++
			}
		}
		if len(v.claimants) == 1 && i == v.primary {
			continue // judged above
		}
		label := nodeLabel(&m.State)
		switch {
		case m.Liveness != mesh.Alive:
			reason := label + " is " + string(livenessOr(m.Liveness))
			if m.State.Role == mesh.RolePrimary {
				reason += " (last known as primary)"
			}
			h.Reasons = append(h.Reasons, reason)
		case !m.State.Healthy:
			h.Reasons = append(h.Reasons, label+" is not healthy")
		case m.State.Role == mesh.RoleReplica && !m.State.Streaming:
			h.Reasons = append(h.Reasons, label+" is not streaming")
		case roleOr(m.State.Role) == mesh.RoleUnknown:
			h.Reasons = append(h.Reasons, label+" has no known role")
		}
	}
	if h.NodesTotal == 0 {
		failed = true
		h.Reasons = append(h.Reasons, "no cluster members known")
	}
	switch {
	case failed:
		h.Status = clusterFailed
	case len(h.Reasons) > 0:
		h.Status = clusterDegraded
	default:
		h.Status = clusterHealthy
	}
	return h
}

func (s *server) handleClusterHealth(w http.ResponseWriter, r *http.Request) {
	v := s.snapshot()
	h := assessCluster(&v)
	h.ClusterName = s.src.Node().ClusterName
	h.SecurityFindings = []SecurityFinding{}
	if sr, ok := s.src.(SecurityReporter); ok {
		h.SecurityFindings = append(h.SecurityFindings, sr.SecurityFindings()...)
	}
	if es, ok := s.src.(ElectionSource); ok {
		// Without its coordination database a pglock cluster cannot fail
		// over: at least degraded.
		if why := es.Election().CoordinationUnreachable; why != "" {
			h.Reasons = append(h.Reasons, why)
			if h.Status == clusterHealthy {
				h.Status = clusterDegraded
			}
		}
	}
	code, msg := http.StatusOK, "cluster is "+h.Status
	if h.Status == clusterFailed {
		code = http.StatusServiceUnavailable
	}
	if len(h.Reasons) > 0 {
		msg += ": " + strings.Join(h.Reasons, "; ")
	}
	s.writeEnvelope(w, r, code, h, msg)
}
