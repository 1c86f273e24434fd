package mesh

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testView() *view { return newView("a", "c1", t0.UnixNano(), t0) }

func st(name string, startedAt int64, version uint64) NodeState {
	return NodeState{Name: name, ClusterName: "c1", StartedAt: startedAt, Version: version, Role: RoleReplica}
}

func findMember(t *testing.T, ms []Member, name string) Member {
	t.Helper()
	for _, m := range ms {
		if m.State.Name == name {
			return m
		}
	}
	t.Fatalf("member %q not in snapshot %+v", name, ms)
	return Member{}
}

func TestViewSetLocalStamps(t *testing.T) {
	v := testView()
	if v.local.Version != 0 || v.local.StartedAt != t0.UnixNano() {
		t.Fatalf("placeholder %+v", v.local)
	}
	in := NodeState{Name: "ignored", ClusterName: "ignored", StartedAt: 1, Version: 99, Role: RolePrimary, LSN: 10,
		Tags: map[string]string{"dc": "x"}}
	s1, changed := v.setLocal(in, t0.Add(time.Second))
	if !changed || s1.Version != 1 || s1.Name != "a" || s1.ClusterName != "c1" || s1.StartedAt != t0.UnixNano() {
		t.Fatalf("first set: changed=%v %+v", changed, s1)
	}
	if s1.ProducedAt != t0.Add(time.Second).UnixMilli() {
		t.Fatalf("ProducedAt %d", s1.ProducedAt)
	}
	// The caller's map must not alias the view's.
	in.Tags["dc"] = "mutated"
	if v.local.Tags["dc"] != "x" {
		t.Fatal("view aliases the caller's tag map")
	}

	// Same content, new time: no new version, ProducedAt moves.
	in.Tags["dc"] = "x"
	s2, changed := v.setLocal(in, t0.Add(2*time.Second))
	if changed || s2.Version != 1 || s2.ProducedAt != t0.Add(2*time.Second).UnixMilli() {
		t.Fatalf("unchanged set: changed=%v %+v", changed, s2)
	}
	// Empty and nil tag maps are the same content.
	in.Tags = map[string]string{}
	v.setLocal(in, t0)
	in.Tags = nil
	if _, changed := v.setLocal(in, t0); changed {
		t.Fatal("nil vs empty tags counted as a change")
	}
	// A content change bumps the version.
	in.LSN = 11
	s3, changed := v.setLocal(in, t0.Add(3*time.Second))
	if !changed || s3.Version != 3 { // v2 was the nil-tags change
		t.Fatalf("changed set: changed=%v version=%d", changed, s3.Version)
	}
	// NaN lag is sanitised (JSON cannot carry it) and does not flap.
	in.LagSeconds = math.NaN()
	s4, _ := v.setLocal(in, t0)
	if s4.LagSeconds != 0 {
		t.Fatalf("NaN lag kept: %v", s4.LagSeconds)
	}
	if _, changed := v.setLocal(in, t0); changed {
		t.Fatal("NaN lag counted as a change on every call")
	}
}

func TestViewApplyStateOrdering(t *testing.T) {
	v := testView()
	now := t0.Add(time.Minute)

	if r := v.applyState(st("b", 100, 5), now); r != applied {
		t.Fatalf("first state: %v", r)
	}
	for _, tc := range []struct {
		name string
		s    NodeState
		want applyResult
	}{
		{"same version", st("b", 100, 5), stale},
		{"older version", st("b", 100, 4), stale},
		{"older boot, higher version", st("b", 99, 50), stale},
		{"newer version", st("b", 100, 6), applied},
		{"restart: newer boot, lower version", st("b", 200, 1), applied},
		{"old boot after restart", st("b", 100, 7), stale},
	} {
		if r := v.applyState(tc.s, now); r != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, r, tc.want)
		}
	}
	if got := v.entries["b"].state; got.StartedAt != 200 || got.Version != 1 {
		t.Fatalf("stored %+v", got)
	}
}

func TestViewApplyStateRefresh(t *testing.T) {
	v := testView()
	s := st("b", 100, 5)
	s.ProducedAt = 1000
	v.applyState(s, t0)

	s.ProducedAt = 2000
	if r := v.applyState(s, t0.Add(time.Second)); r != refreshed || r.changed() {
		t.Fatalf("heartbeat: %v", r)
	}
	e := v.entries["b"]
	if e.state.ProducedAt != 2000 || !e.lastSeen.Equal(t0.Add(time.Second)) {
		t.Fatalf("after heartbeat %+v", e)
	}
	// The same heartbeat again (a relay) is stale and does not move LastSeen.
	if r := v.applyState(s, t0.Add(2*time.Second)); r != stale {
		t.Fatalf("duplicate heartbeat: %v", r)
	}
	if !e.lastSeen.Equal(t0.Add(time.Second)) {
		t.Fatal("stale state moved LastSeen")
	}
}

func TestViewApplyStateRejects(t *testing.T) {
	v := testView()
	foreign := st("b", 100, 1)
	foreign.ClusterName = "other"
	if r := v.applyState(foreign, t0); r != foreignCluster {
		t.Fatalf("foreign: %v", r)
	}
	if _, ok := v.entries["b"]; ok {
		t.Fatal("foreign state created an entry")
	}
	if r := v.applyState(NodeState{ClusterName: "c1", StartedAt: 1}, t0); r != invalid {
		t.Fatalf("nameless: %v", r)
	}
	if r := v.applyState(NodeState{Name: "b", ClusterName: "c1"}, t0); r != invalid {
		t.Fatalf("no StartedAt: %v", r)
	}
}

func TestViewApplyStateOwnName(t *testing.T) {
	v := testView()
	v.setLocal(NodeState{Role: RolePrimary}, t0) // version 1
	boot := v.local.StartedAt
	for _, tc := range []struct {
		name string
		s    NodeState
		want applyResult
	}{
		{"echo of our state", st("a", boot, 1), ownEcho},
		{"echo of an older version", st("a", boot, 0), ownEcho},
		{"our previous boot", st("a", boot-1, 9), ownStale},
		{"newer boot claims our name", st("a", boot+1, 1), ownConflict},
		{"our boot, a version we never made", st("a", boot, 2), ownConflict},
	} {
		if r := v.applyState(tc.s, t0); r != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, r, tc.want)
		}
	}
	if v.local.Role != RolePrimary || v.local.Version != 1 {
		t.Fatalf("local state overwritten: %+v", v.local)
	}
	if _, ok := v.entries["a"]; ok {
		t.Fatal("own name got a remote entry")
	}
}

func TestViewSnapshotShowsOnlyMemberlistKnownNodes(t *testing.T) {
	v := testView()
	v.applyState(st("b", 100, 1), t0)
	if ms := v.snapshot(); len(ms) != 1 || !ms[0].Self {
		t.Fatalf("gossip-only node shown: %+v", ms)
	}
	v.join("b", "10.0.0.2:7946", nodeMeta{NodeID: 2}, t0)
	ms := v.snapshot()
	b := findMember(t, ms, "b")
	if b.Liveness != Alive || b.Addr != "10.0.0.2:7946" || b.State.Version != 1 || b.Self {
		t.Fatalf("b = %+v", b)
	}
}

func TestViewSnapshotMetaPlaceholderAndOrder(t *testing.T) {
	v := testView()
	v.setLocal(NodeState{NodeID: 2}, t0)
	v.join("a", "127.0.0.1:1", nodeMeta{}, t0) // self: address only
	v.join("z", "127.0.0.1:4", nodeMeta{NodeID: 1, APIURL: "http://z"}, t0)
	v.join("y", "127.0.0.1:3", nodeMeta{NodeID: 3}, t0)
	v.join("x", "127.0.0.1:2", nodeMeta{NodeID: 3}, t0)
	ms := v.snapshot()
	var names []string
	for _, m := range ms {
		names = append(names, m.State.Name)
	}
	if got := names; len(got) != 4 || got[0] != "z" || got[1] != "a" || got[2] != "x" || got[3] != "y" {
		t.Fatalf("order %v", got)
	}
	z := ms[0]
	if z.State.APIURL != "http://z" || z.State.Role != RoleUnknown || z.State.NodeID != 1 {
		t.Fatalf("placeholder %+v", z.State)
	}
	if self := ms[1]; !self.Self || self.Addr != "127.0.0.1:1" || self.Liveness != Alive {
		t.Fatalf("self %+v", self)
	}
	// A received state replaces the metadata placeholder.
	s := st("z", 5, 1)
	s.NodeID = 1
	s.Role = RolePrimary
	v.applyState(s, t0)
	if got := findMember(t, v.snapshot(), "z").State; got.Role != RolePrimary {
		t.Fatalf("state not shown: %+v", got)
	}
}

func TestViewSnapshotIsACopy(t *testing.T) {
	v := testView()
	s := st("b", 1, 1)
	s.Tags = map[string]string{"k": "v"}
	v.applyState(s, t0)
	v.join("b", "x:1", nodeMeta{}, t0)
	findMember(t, v.snapshot(), "b").State.Tags["k"] = "mutated"
	if v.entries["b"].state.Tags["k"] != "v" {
		t.Fatal("snapshot aliases the view's tags")
	}
}

func TestViewLivenessTransitions(t *testing.T) {
	v := testView()
	v.applyState(st("b", 100, 1), t0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	if !v.join("b", "h:1", nodeMeta{}, at(1)) {
		t.Fatal("join not a change")
	}
	if v.join("b", "h:1", nodeMeta{}, at(2)) {
		t.Fatal("repeated join is a change")
	}
	if v.unsuspect("b", at(2)) {
		t.Fatal("unsuspect of an alive member is a change")
	}
	if !v.suspect("b", at(3)) || v.entries["b"].liveness != Suspect {
		t.Fatal("suspect")
	}
	if got := v.entries["b"].lastSeen; !got.Equal(at(3)) {
		t.Fatalf("LastSeen %v after a liveness change", got)
	}
	if v.liveCount() != 2 {
		t.Fatalf("liveCount with a suspect = %d, want 2", v.liveCount())
	}
	if !v.unsuspect("b", at(4)) || v.entries["b"].liveness != Alive {
		t.Fatal("unsuspect")
	}
	v.suspect("b", at(5))
	if !v.down("b", "h:1", at(6)) || v.entries["b"].liveness != Dead {
		t.Fatal("down without a leave notice must be Dead")
	}
	if v.liveCount() != 1 {
		t.Fatalf("liveCount = %d", v.liveCount())
	}
	// A late suspicion or ack must not resurrect a dead member.
	if v.suspect("b", at(7)) || v.unsuspect("b", at(7)) || v.entries["b"].liveness != Dead {
		t.Fatal("dead member changed by suspect/unsuspect")
	}
	// Back from the dead at a new address.
	if !v.join("b", "h:2", nodeMeta{}, at(8)) {
		t.Fatal("rejoin")
	}
	if m := findMember(t, v.snapshot(), "b"); m.Liveness != Alive || m.Addr != "h:2" || !m.LastSeen.Equal(at(8)) {
		t.Fatalf("after rejoin %+v", m)
	}
	// Unknown names and self are ignored.
	if v.suspect("nobody", at(9)) || v.down("a", "", at(9)) || v.suspect("a", at(9)) {
		t.Fatal("unknown/self liveness change")
	}
}

func TestViewGracefulLeave(t *testing.T) {
	t.Run("notice before NotifyLeave", func(t *testing.T) {
		v := testView()
		v.applyState(st("b", 100, 1), t0)
		v.join("b", "h:1", nodeMeta{}, t0)
		if v.leave(leaveNotice{Name: "b", StartedAt: 100}, t0) {
			t.Fatal("notice alone changed the view")
		}
		v.down("b", "h:1", t0)
		if l := v.entries["b"].liveness; l != Left {
			t.Fatalf("liveness %v, want left", l)
		}
	})
	t.Run("notice after NotifyLeave", func(t *testing.T) {
		v := testView()
		v.applyState(st("b", 100, 1), t0)
		v.join("b", "h:1", nodeMeta{}, t0)
		v.down("b", "h:1", t0)
		if !v.leave(leaveNotice{Name: "b", StartedAt: 100}, t0) || v.entries["b"].liveness != Left {
			t.Fatalf("liveness %v, want left", v.entries["b"].liveness)
		}
	})
	t.Run("stale notice from an older boot", func(t *testing.T) {
		v := testView()
		v.applyState(st("b", 200, 1), t0)
		v.join("b", "h:1", nodeMeta{}, t0)
		v.leave(leaveNotice{Name: "b", StartedAt: 100}, t0)
		v.down("b", "h:1", t0)
		if l := v.entries["b"].liveness; l != Dead {
			t.Fatalf("liveness %v, want dead", l)
		}
	})
	t.Run("rejoin forgets the notice", func(t *testing.T) {
		v := testView()
		v.applyState(st("b", 100, 1), t0)
		v.join("b", "h:1", nodeMeta{}, t0)
		v.leave(leaveNotice{Name: "b", StartedAt: 100}, t0)
		v.down("b", "h:1", t0)
		v.join("b", "h:2", nodeMeta{}, t0) // restarted, its new state not here yet
		v.down("b", "h:2", t0)             // and crashed
		if l := v.entries["b"].liveness; l != Dead {
			t.Fatalf("liveness %v, want dead", l)
		}
	})
}

func TestViewStates(t *testing.T) {
	v := testView()
	v.applyState(st("b", 1, 1), t0)
	v.join("c", "h:1", nodeMeta{}, t0) // no state: not in states()
	got := v.states()
	if len(got) != 2 || got[0].Name != "a" {
		t.Fatalf("states %+v", got)
	}
}
