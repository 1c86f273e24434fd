package mesh

import "time"

// Role is what a node's PostgreSQL currently is.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	RoleUnknown Role = "unknown"
)

// DataState says whether a node's data directory holds a usable cluster;
// bootstrap decides from it who runs initdb and who clones.
type DataState string

const (
	// DataEmpty: no data directory yet; the node waits for bootstrap.
	DataEmpty DataState = "empty"
	// DataInitializing: initdb or pg_basebackup is running.
	DataInitializing DataState = "initializing"
	// DataReady: a data directory exists (the server may still be down).
	DataReady DataState = "ready"
)

// NodeState is what one daemon tells every other about itself. It is
// spread by gossip broadcasts and push/pull, not by memberlist node meta,
// because it changes at every health check (LSN, lag).
//
// (StartedAt, Version) orders states from one node: StartedAt is the
// daemon's boot time in Unix nanoseconds, Version increases with every
// change during one boot. A state replaces another from the same node only
// if it is newer by that order.
type NodeState struct {
	NodeID      int       `json:"node_id"`
	Name        string    `json:"name"`
	ClusterName string    `json:"cluster_name"`
	APIURL      string    `json:"api_url"`
	PGHost      string    `json:"pg_host"`
	PGPort      int       `json:"pg_port"`
	DataState   DataState `json:"data_state"`
	// SystemID is the PostgreSQL system identifier (0 before initdb),
	// a decimal string in JSON because it does not fit a float64.
	SystemID  uint64 `json:"system_id,string"`
	Role      Role   `json:"role"`
	PGRunning bool   `json:"pg_running"`
	// Healthy: PostgreSQL is running and accepting connections, and, on a
	// replica, streaming from the primary.
	Healthy  bool   `json:"healthy"`
	Timeline uint32 `json:"timeline"`
	// LSN is the current WAL insert position on a primary and the last
	// received position on a replica.
	LSN       uint64 `json:"lsn"`
	ReplayLSN uint64 `json:"replay_lsn"`
	// WriterToken is the fencing token under which the primary that wrote
	// the last record of this node's WAL was promoted (see
	// election.Position); meaningful only when WriterTokenKnown.
	WriterToken      uint64 `json:"writer_token,omitempty"`
	WriterTokenKnown bool   `json:"writer_token_known,omitempty"`

	// LagBytes and LagSeconds are this replica's distance behind its
	// primary (0 on a primary).
	LagBytes   uint64            `json:"lag_bytes"`
	LagSeconds float64           `json:"lag_seconds"`
	Streaming  bool              `json:"streaming"`
	PGVersion  string            `json:"pg_version,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	StartedAt  int64             `json:"started_at"`
	Version    uint64            `json:"version"`
	// ProducedAt is when this state was produced (Unix milliseconds).
	ProducedAt int64 `json:"produced_at"`
}

// NewerThan reports whether s supersedes o (both from the same node).
func (s NodeState) NewerThan(o NodeState) bool {
	if s.StartedAt != o.StartedAt {
		return s.StartedAt > o.StartedAt
	}
	return s.Version > o.Version
}

// Liveness is the SWIM verdict on a member.
type Liveness string

const (
	Alive   Liveness = "alive"
	Suspect Liveness = "suspect"
	Dead    Liveness = "dead"
	Left    Liveness = "left"
)

// Member is one node as this daemon sees it: its last known state plus the
// failure detector's verdict.
type Member struct {
	State    NodeState `json:"state"`
	Liveness Liveness  `json:"liveness"`
	// Addr is the member's gossip address (host:port).
	Addr string `json:"addr"`
	// LastSeen is when this daemon last heard from the member (a state
	// update or a liveness change).
	LastSeen time.Time `json:"last_seen"`
	// Self marks the local node.
	Self bool `json:"self"`
}
