package daemon

import (
	"testing"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

func testDaemon() *Daemon {
	cfg := configs.Default()
	cfg.Cluster.NodeID = 2
	cfg.Cluster.NodeName = "node2"
	cfg.PostgreSQL.Port = 5434
	return &Daemon{cfg: cfg}
}

func TestNodeStateFromHealth(t *testing.T) {
	d := testDaemon()
	primary := mesh.Member{Liveness: mesh.Alive, State: mesh.NodeState{NodeID: 1, Role: mesh.RolePrimary, Timeline: 1, LSN: 5000}}
	tests := []struct {
		name    string
		h       pg.Health
		role    mesh.Role
		healthy bool
		lsn     uint64
		lag     uint64
	}{
		{"down", pg.Health{}, mesh.RoleUnknown, false, 0, 0},
		{"running but not answering", pg.Health{Running: true}, mesh.RoleUnknown, false, 0, 0},
		{"primary", pg.Health{Running: true, Accepting: true, CurrentLSN: 7000, Timeline: 1}, mesh.RolePrimary, true, 7000, 0},
		{"streaming replica behind", pg.Health{Running: true, Accepting: true, InRecovery: true, Streaming: true, ReceiveLSN: 4000, ReplayLSN: 3500}, mesh.RoleReplica, true, 4000, 1000},
		{"replica not streaming", pg.Health{Running: true, Accepting: true, InRecovery: true, ReceiveLSN: 4000, ReplayLSN: 4000}, mesh.RoleReplica, false, 4000, 1000},
		{"replica ahead of stale gossip", pg.Health{Running: true, Accepting: true, InRecovery: true, Streaming: true, ReceiveLSN: 6000, ReplayLSN: 6000}, mesh.RoleReplica, true, 6000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := d.nodeState(tt.h, mesh.DataReady, 42, []mesh.Member{primary})
			if s.Role != tt.role || s.Healthy != tt.healthy || s.LSN != tt.lsn || s.LagBytes != tt.lag {
				t.Fatalf("got role=%s healthy=%v lsn=%d lag=%d, want %s %v %d %d", s.Role, s.Healthy, s.LSN, s.LagBytes, tt.role, tt.healthy, tt.lsn, tt.lag)
			}
			if s.NodeID != 2 || s.Name != "node2" || s.PGPort != 5434 || s.SystemID != 42 {
				t.Fatalf("identity fields wrong: %+v", s)
			}
		})
	}
}

func TestPrimaryOfIgnoresDeadAndSelf(t *testing.T) {
	ms := []mesh.Member{
		{Liveness: mesh.Dead, State: mesh.NodeState{NodeID: 1, Role: mesh.RolePrimary, Timeline: 5}},
		{Liveness: mesh.Alive, State: mesh.NodeState{NodeID: 2, Role: mesh.RolePrimary, Timeline: 4}},
		{Liveness: mesh.Alive, State: mesh.NodeState{NodeID: 3, Role: mesh.RolePrimary, Timeline: 3}},
	}
	p, ok := primaryOf(ms, 2)
	if !ok || p.NodeID != 3 {
		t.Fatalf("primaryOf = %d, %v; want node 3", p.NodeID, ok)
	}
}
