package api

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// localRole is this node's role by pg.Health.Role, the one rule every
// component reports.
func localRole(h pg.Health) mesh.Role { return mesh.Role(h.Role()) }

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	// Answering at all is the point: the daemon is up and serving.
	s.writeEnvelope(w, r, http.StatusOK, map[string]string{"status": "ok"}, "")
}

// nodeInfo is /node/info. node_id and cluster_name repeat id and cluster
// under the names every other endpoint uses, so clients can use either.
type nodeInfo struct {
	ID                int               `json:"id"`
	NodeID            int               `json:"node_id"`
	Name              string            `json:"name"`
	Cluster           string            `json:"cluster"`
	ClusterName       string            `json:"cluster_name"`
	Version           string            `json:"version"`
	Role              mesh.Role         `json:"role"`
	PostgreSQLVersion string            `json:"postgresql_version"`
	DataDirectory     string            `json:"data_directory"`
	UptimeSeconds     float64           `json:"uptime_seconds"`
	StartedAt         time.Time         `json:"started_at"`
	APIURL            string            `json:"api_url"`
	MeshAddr          string            `json:"mesh_addr"`
	PGHost            string            `json:"pg_host"`
	PGPort            int               `json:"pg_port"`
	Tags              map[string]string `json:"tags"`
}

func (s *server) handleNodeInfo(w http.ResponseWriter, r *http.Request) {
	n := s.src.Node()
	h := s.src.LocalHealth()
	var uptime float64
	if !n.StartedAt.IsZero() {
		// Milliseconds are plenty; more digits are noise.
		uptime = math.Round(max(0, s.now().Sub(n.StartedAt).Seconds())*1000) / 1000
	}
	s.writeEnvelope(w, r, http.StatusOK, nodeInfo{
		ID:                n.NodeID,
		NodeID:            n.NodeID,
		Name:              n.Name,
		Cluster:           n.ClusterName,
		ClusterName:       n.ClusterName,
		Version:           n.Version,
		Role:              localRole(h),
		PostgreSQLVersion: h.Version,
		DataDirectory:     n.DataDirectory,
		UptimeSeconds:     uptime,
		StartedAt:         n.StartedAt.UTC(),
		APIURL:            n.APIURL,
		MeshAddr:          n.MeshAddr,
		PGHost:            n.PGHost,
		PGPort:            n.PGPort,
		Tags:              tagsOrEmpty(n.Tags),
	}, "")
}

// healthCheck is one verdict in /node/health.
type healthCheck struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// nodeHealth is the last local check in detail. LSNs appear both as
// PostgreSQL text and as numbers, for humans and for arithmetic.
type nodeHealth struct {
	Healthy         bool          `json:"healthy"`
	Role            mesh.Role     `json:"role"`
	Checks          []healthCheck `json:"checks"`
	CheckedAt       time.Time     `json:"checked_at"`
	CheckAgeMs      int64         `json:"check_age_ms"`
	Running         bool          `json:"running"`
	Accepting       bool          `json:"accepting"`
	InRecovery      bool          `json:"in_recovery"`
	Timeline        uint32        `json:"timeline"`
	CurrentLSN      string        `json:"current_lsn"`
	CurrentLSNBytes uint64        `json:"current_lsn_bytes"`
	ReceiveLSN      string        `json:"receive_lsn"`
	ReceiveLSNBytes uint64        `json:"receive_lsn_bytes"`
	ReplayLSN       string        `json:"replay_lsn"`
	ReplayLSNBytes  uint64        `json:"replay_lsn_bytes"`
	Streaming       bool          `json:"streaming"`
	ReceiverStatus  string        `json:"receiver_status"`
	UpstreamHost    string        `json:"upstream_host"`
	UpstreamPort    int           `json:"upstream_port"`
	LagSeconds      float64       `json:"lag_seconds"`
	SystemID        string        `json:"system_id"`
	PostgreSQLVer   string        `json:"postgresql_version"`
	Standbys        []pg.Standby  `json:"standbys"`
	Error           string        `json:"error,omitempty"`
}

// localChecks turns a health check into named verdicts. The streaming
// check exists only for a replica: a primary streams to others, not from.
func localChecks(h pg.Health) []healthCheck {
	role := localRole(h)
	running := healthCheck{Name: "running", Pass: h.Running, Detail: "PostgreSQL is running"}
	if !h.Running {
		running.Detail = "PostgreSQL is not running"
		if h.Error != "" {
			running.Detail += ": " + h.Error
		}
	}
	accepting := healthCheck{Name: "accepting", Pass: h.Accepting, Detail: "PostgreSQL accepts connections"}
	if !h.Accepting {
		accepting.Detail = "PostgreSQL does not accept connections"
		if h.Running && h.Error != "" {
			accepting.Detail += ": " + h.Error
		}
	}
	roleCheck := healthCheck{Name: "role", Pass: role != mesh.RoleUnknown, Detail: "role is " + string(role)}
	checks := []healthCheck{running, accepting, roleCheck}
	if role == mesh.RoleReplica {
		streaming := healthCheck{Name: "streaming", Pass: h.Streaming, Detail: "WAL receiver is streaming"}
		if !h.Streaming {
			streaming.Detail = "WAL receiver is " + receiverState(h)
		}
		checks = append(checks, streaming)
	}
	return checks
}

// receiverState names a standby's replication state: "streaming", the WAL
// receiver's status, or "stopped" when there is no receiver.
func receiverState(h pg.Health) string {
	switch {
	case h.Streaming:
		return "streaming"
	case h.ReceiverStatus != "":
		return h.ReceiverStatus
	}
	return "stopped"
}

func (s *server) handleNodeHealth(w http.ResponseWriter, r *http.Request) {
	h := s.src.LocalHealth()
	checks := localChecks(h)
	healthy := true
	var failing []string
	for _, c := range checks {
		if !c.Pass {
			healthy = false
			failing = append(failing, c.Name)
		}
	}
	age := int64(-1) // never checked
	if !h.CheckedAt.IsZero() {
		age = max(0, s.now().Sub(h.CheckedAt).Milliseconds())
	}
	standbys := make([]pg.Standby, len(h.Standbys))
	for i, sb := range h.Standbys {
		sb.WriteLagSeconds = finite(sb.WriteLagSeconds)
		sb.FlushLagSeconds = finite(sb.FlushLagSeconds)
		sb.ReplayLagSeconds = finite(sb.ReplayLagSeconds)
		standbys[i] = sb
	}
	data := nodeHealth{
		Healthy:         healthy,
		Role:            localRole(h),
		Checks:          checks,
		CheckedAt:       h.CheckedAt.UTC(),
		CheckAgeMs:      age,
		Running:         h.Running,
		Accepting:       h.Accepting,
		InRecovery:      h.InRecovery,
		Timeline:        h.Timeline,
		CurrentLSN:      formatLSN(uint64(h.CurrentLSN)),
		CurrentLSNBytes: uint64(h.CurrentLSN),
		ReceiveLSN:      formatLSN(uint64(h.ReceiveLSN)),
		ReceiveLSNBytes: uint64(h.ReceiveLSN),
		ReplayLSN:       formatLSN(uint64(h.ReplayLSN)),
		ReplayLSNBytes:  uint64(h.ReplayLSN),
		Streaming:       h.Streaming,
		ReceiverStatus:  h.ReceiverStatus,
		UpstreamHost:    h.UpstreamHost,
		UpstreamPort:    h.UpstreamPort,
		LagSeconds:      finite(h.LagSeconds),
		SystemID:        strconv.FormatUint(h.SystemID, 10),
		PostgreSQLVer:   h.Version,
		Standbys:        standbys,
		Error:           h.Error,
	}
	if healthy {
		s.writeEnvelope(w, r, http.StatusOK, data, "")
		return
	}
	// 503 keeps load balancers and probes simple; the body still says why.
	s.writeEnvelope(w, r, http.StatusServiceUnavailable, data, "node is not healthy: failing checks: "+strings.Join(failing, ", "))
}
