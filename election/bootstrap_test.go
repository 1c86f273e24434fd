package election

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/ramd/ramd/mesh"
)

func member(id int, ds mesh.DataState, role mesh.Role, healthy bool, sysid uint64) mesh.Member {
	return mesh.Member{
		Liveness: mesh.Alive,
		State: mesh.NodeState{
			NodeID: id, Name: "node" + string(rune('0'+id)), DataState: ds, Role: role,
			Healthy: healthy, SystemID: sysid, PGHost: "127.0.0.1", PGPort: 5432 + id,
		},
	}
}

func TestBootstrap(t *testing.T) {
	empty := func(id int) mesh.Member { return member(id, mesh.DataEmpty, mesh.RoleUnknown, false, 0) }
	tests := []struct {
		name   string
		in     BootstrapInput
		action BootstrapAction
		source int
		reason string
	}{
		{"too few nodes", BootstrapInput{Self: 1, ExpectNodes: 3, Members: []mesh.Member{empty(1), empty(2)}}, Wait, 0, "2 of 3"},
		{"lowest id inits", BootstrapInput{Self: 1, ExpectNodes: 3, Members: []mesh.Member{empty(3), empty(1), empty(2)}}, InitPrimary, 0, "lowest id"},
		{"others wait for lowest", BootstrapInput{Self: 2, ExpectNodes: 3, Members: []mesh.Member{empty(3), empty(1), empty(2)}}, Wait, 0, "node 1"},
		{"dead members do not count", BootstrapInput{Self: 1, ExpectNodes: 3, Members: []mesh.Member{empty(1), empty(2), func() mesh.Member { m := empty(3); m.Liveness = mesh.Dead; return m }()}}, Wait, 0, "2 of 3"},
		{"unknown member state waits", BootstrapInput{Self: 1, ExpectNodes: 2, Members: []mesh.Member{empty(1), {Liveness: mesh.Alive}}}, Wait, 0, "state of member"},
		{"initializing peer waits", BootstrapInput{Self: 2, ExpectNodes: 2, Members: []mesh.Member{member(1, mesh.DataInitializing, mesh.RoleUnknown, false, 0), empty(2)}}, Wait, 0, "node 1"},
		{"clone from healthy primary", BootstrapInput{Self: 3, ExpectNodes: 3, Members: []mesh.Member{member(1, mesh.DataReady, mesh.RolePrimary, true, 7), empty(3)}}, Clone, 1, "healthy primary"},
		{"unhealthy primary is not cloned", BootstrapInput{Self: 2, ExpectNodes: 2, Members: []mesh.Member{member(1, mesh.DataReady, mesh.RolePrimary, false, 7), empty(2)}}, Wait, 0, "node 1"},
		{"external primary adopted", BootstrapInput{Self: 2, ExpectNodes: 2, Members: []mesh.Member{empty(1), empty(2)}, External: &Endpoint{Host: "db", Port: 5432}}, Clone, 0, "external"},
		{"own data, known cluster", BootstrapInput{Self: 1, HasData: true, LocalSystemID: 7, KnownSystemID: 7, ExpectNodes: 3}, StartExisting, 0, "belongs"},
		{"own data, other cluster recorded", BootstrapInput{Self: 1, HasData: true, LocalSystemID: 8, KnownSystemID: 7, ExpectNodes: 3}, Refuse, 0, "move the data directory aside"},
		{"adopt waits for peers", BootstrapInput{Self: 2, HasData: true, LocalSystemID: 7, ExpectNodes: 3, Members: []mesh.Member{member(2, mesh.DataReady, mesh.RoleUnknown, false, 7)}}, Wait, 0, "compare"},
		{"adopt matching", BootstrapInput{Self: 2, HasData: true, LocalSystemID: 7, ExpectNodes: 2, Members: []mesh.Member{member(1, mesh.DataReady, mesh.RolePrimary, true, 7), member(2, mesh.DataReady, mesh.RoleUnknown, false, 7)}}, StartExisting, 0, "adopting"},
		{"adopt foreign refused", BootstrapInput{Self: 2, HasData: true, LocalSystemID: 9, ExpectNodes: 1, Members: []mesh.Member{member(1, mesh.DataReady, mesh.RolePrimary, true, 7)}}, Refuse, 0, "foreign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Bootstrap(tt.in)
			if d.Action != tt.action {
				t.Fatalf("action = %v (%s), want %v", d.Action, d.Reason, tt.action)
			}
			if tt.action == Clone && d.Source.NodeID != tt.source {
				t.Errorf("source = %d, want %d", d.Source.NodeID, tt.source)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", d.Reason, tt.reason)
			}
		})
	}
}

// TestBootstrapExactlyOneInitdb is a property test: for any set of empty
// nodes that all see the same view of at least ExpectNodes members, exactly
// one decides InitPrimary, whatever order the members are listed in.
func TestBootstrapExactlyOneInitdb(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 2000; iter++ {
		n := 1 + rng.Intn(7)
		ids := rng.Perm(20)[:n]
		var ms []mesh.Member
		for _, id := range ids {
			ms = append(ms, member(id+1, mesh.DataEmpty, mesh.RoleUnknown, false, 0))
		}
		expect := 1 + rng.Intn(n)
		inits := 0
		for _, id := range ids {
			view := append([]mesh.Member(nil), ms...)
			rng.Shuffle(len(view), func(i, j int) { view[i], view[j] = view[j], view[i] })
			if Bootstrap(BootstrapInput{Self: id + 1, ExpectNodes: expect, Members: view}).Action == InitPrimary {
				inits++
			}
		}
		if inits != 1 {
			t.Fatalf("iteration %d: %d nodes chose initdb (ids %v, expect %d)", iter, inits, ids, expect)
		}
	}
}
