package api

import (
	"testing"

	"github.com/ramd/ramd/mesh"
)

type testReplication struct {
	PrimaryNodeID int    `json:"primary_node_id"`
	LagSource     string `json:"lag_source"`
	Standbys      []struct {
		NodeID           int     `json:"node_id"`
		Name             string  `json:"name"`
		Liveness         string  `json:"liveness"`
		State            string  `json:"state"`
		SyncState        string  `json:"sync_state"`
		WriteLagBytes    uint64  `json:"write_lag_bytes"`
		FlushLagBytes    uint64  `json:"flush_lag_bytes"`
		ReplayLagBytes   uint64  `json:"replay_lag_bytes"`
		WriteLagSeconds  float64 `json:"write_lag_seconds"`
		FlushLagSeconds  float64 `json:"flush_lag_seconds"`
		ReplayLagSeconds float64 `json:"replay_lag_seconds"`
	} `json:"standbys"`
	OtherClients []struct {
		ApplicationName string `json:"application_name"`
		SyncState       string `json:"sync_state"`
	} `json:"other_clients"`
}

func TestReplicationOnPrimary(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	r := decodeData[testReplication](t, envelopeOf(t, a.do("GET", "/api/v1/replication/status")))
	if r.PrimaryNodeID != 1 || r.LagSource != "pg_stat_replication" || len(r.Standbys) != 2 {
		t.Fatalf("replication = %+v", r)
	}
	// pg2 is in pg_stat_replication: its row is the authority.
	s2 := r.Standbys[0]
	if s2.NodeID != 2 || s2.State != "streaming" || s2.SyncState != "async" ||
		s2.WriteLagBytes != 10 || s2.FlushLagBytes != 20 || s2.ReplayLagBytes != 30 ||
		s2.WriteLagSeconds != 0.001 || s2.FlushLagSeconds != 0.002 || s2.ReplayLagSeconds != 0.003 {
		t.Errorf("pg2 = %+v", s2)
	}
	// pg3 gossips that it streams, but not from us.
	s3 := r.Standbys[1]
	if s3.NodeID != 3 || s3.State != "stopped" || s3.SyncState != "unknown" || s3.ReplayLagBytes != 0x1000 {
		t.Errorf("pg3 = %+v", s3)
	}
	if len(r.OtherClients) != 1 || r.OtherClients[0].ApplicationName != "pg_receivewal" || r.OtherClients[0].SyncState != "sync" {
		t.Errorf("other clients = %+v", r.OtherClients)
	}
}

func TestReplicationOnReplica(t *testing.T) {
	a := newTestAPI(t, 2, notStreamingHealth())
	a.src.set(func(f *fakeSource) {
		f.members[2].Liveness = mesh.Suspect
		f.members[2].State.Streaming = false
	})
	r := decodeData[testReplication](t, envelopeOf(t, a.do("GET", "/api/v1/replication/status")))
	if r.PrimaryNodeID != 1 || r.LagSource != "gossip" || len(r.Standbys) != 2 || len(r.OtherClients) != 0 {
		t.Fatalf("replication = %+v", r)
	}
	self, other := r.Standbys[0], r.Standbys[1]
	// This node's state comes from its own WAL receiver.
	if self.NodeID != 2 || self.State != "startup" || self.SyncState != "unknown" {
		t.Errorf("self = %+v", self)
	}
	// Gossip lag fills all three columns.
	if other.NodeID != 3 || other.State != "stopped" || other.Liveness != "suspect" ||
		other.WriteLagBytes != 0x1000 || other.FlushLagBytes != 0x1000 || other.ReplayLagBytes != 0x1000 ||
		other.ReplayLagSeconds != 1.25 {
		t.Errorf("pg3 = %+v", other)
	}
}

func TestReplicationWithoutPrimary(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	a.src.set(func(f *fakeSource) { f.members[0].Liveness = mesh.Dead; f.members[2].Liveness = mesh.Left })
	r := decodeData[testReplication](t, envelopeOf(t, a.do("GET", "/api/v1/replication/status")))
	if r.PrimaryNodeID != 0 || len(r.Standbys) != 1 || r.Standbys[0].State != "streaming" {
		t.Errorf("replication = %+v", r)
	}
}
