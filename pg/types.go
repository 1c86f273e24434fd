package pg

import (
	"fmt"
	"time"
)

// LSN is a PostgreSQL WAL position.
type LSN uint64

// String renders an LSN as PostgreSQL does ("16/B374D848").
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// Health is one check of the local PostgreSQL server.
type Health struct {
	CheckedAt time.Time `json:"checked_at"`
	// Running: a postmaster is alive for the data directory.
	Running bool `json:"running"`
	// Accepting: a SQL connection succeeded and answered.
	Accepting  bool   `json:"accepting"`
	InRecovery bool   `json:"in_recovery"`
	Timeline   uint32 `json:"timeline"`
	// CurrentLSN is pg_current_wal_lsn() on a primary.
	CurrentLSN LSN `json:"current_lsn"`
	// ReceiveLSN and ReplayLSN are a standby's received and replayed WAL.
	ReceiveLSN LSN `json:"receive_lsn"`
	ReplayLSN  LSN `json:"replay_lsn"`
	// Streaming: a standby's WAL receiver is in state "streaming".
	Streaming bool `json:"streaming"`
	// ReceiverStatus is pg_stat_wal_receiver.status ("" when none).
	ReceiverStatus string `json:"receiver_status"`
	// UpstreamHost/Port are where the WAL receiver is connected to.
	UpstreamHost string `json:"upstream_host,omitempty"`
	UpstreamPort int    `json:"upstream_port,omitempty"`
	// LagSeconds is now() - pg_last_xact_replay_timestamp() on a standby
	// when it is behind, 0 when caught up.
	LagSeconds float64 `json:"lag_seconds"`
	// SystemID is the PostgreSQL system identifier.
	SystemID uint64    `json:"system_id,string"`
	Version  string    `json:"version"`
	Standbys []Standby `json:"standbys"`
	// Error is the reason the check failed, if it did.
	Error string `json:"error,omitempty"`
}

// Standby is one row of pg_stat_replication on a primary.
type Standby struct {
	ApplicationName  string  `json:"application_name"`
	ClientAddr       string  `json:"client_addr"`
	State            string  `json:"state"`
	SyncState        string  `json:"sync_state"`
	SentLSN          LSN     `json:"sent_lsn"`
	WriteLSN         LSN     `json:"write_lsn"`
	FlushLSN         LSN     `json:"flush_lsn"`
	ReplayLSN        LSN     `json:"replay_lsn"`
	WriteLagBytes    uint64  `json:"write_lag_bytes"`
	FlushLagBytes    uint64  `json:"flush_lag_bytes"`
	ReplayLagBytes   uint64  `json:"replay_lag_bytes"`
	WriteLagSeconds  float64 `json:"write_lag_seconds"`
	FlushLagSeconds  float64 `json:"flush_lag_seconds"`
	ReplayLagSeconds float64 `json:"replay_lag_seconds"`
}

// Role names what a checked server is, as the gossip, the API and the
// metrics report it: "primary" only when it answers and is out of
// recovery; "replica" when a running server is in recovery (even before it
// accepts connections); "unknown" otherwise, because a stopped server's
// last in_recovery value says nothing about what it is now.
func (h Health) Role() string {
	switch {
	case !h.Running:
		return "unknown"
	case h.InRecovery:
		return "replica"
	case h.Accepting:
		return "primary"
	}
	return "unknown"
}
