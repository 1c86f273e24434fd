package election

import (
	"errors"
	"slices"
	"testing"
)

func TestSetDetachedApply(t *testing.T) {
	s := ClusterState{}
	must := func(c Command) {
		t.Helper()
		c.Version = CommandVersion
		if err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	must(Command{Type: CmdBootstrap, Bootstrap: &BootstrapCmd{Primary: 1, Voters: []uint64{1, 2, 3}}})
	must(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: 3, On: true}})
	must(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: 2, On: true}})
	must(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: 3, On: true}}) // idempotent
	if !slices.Equal(s.Detached, []uint64{2, 3}) {
		t.Fatalf("detached %v, want [2 3]", s.Detached)
	}
	if err := s.Apply(Command{Version: CommandVersion, Type: CmdSetDetached, Detached: &DetachedCmd{Node: 1, On: true}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("detaching the primary: %v, want a rejection", err)
	}
	must(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: 3}})
	if !slices.Equal(s.Detached, []uint64{2}) {
		t.Fatalf("detached %v after re-attaching 3, want [2]", s.Detached)
	}
	// A detached node that is promoted anyway (a forced manual failover)
	// is attached by definition.
	must(Command{Type: CmdPromote, Promote: &PromoteCmd{Token: 2, Old: 1, New: 2}})
	if len(s.Detached) != 0 {
		t.Fatalf("detached %v after promoting node 2", s.Detached)
	}
	if _, err := DecodeCommand([]byte(`{"version":1,"type":"set-detached","detached":{"node":0,"on":true}}`)); !errors.Is(err, ErrMalformedCommand) {
		t.Fatalf("node 0: %v", err)
	}
}

func TestChooseSkipsDetached(t *testing.T) {
	ch := Choose(ChooseInput{Exclude: 1, Candidates: []Candidate{
		{ID: 2, Alive: true, Healthy: true, Position: Position{Timeline: 1, LSN: 200}, Detached: true},
		{ID: 3, Alive: true, Healthy: true, Position: Position{Timeline: 1, LSN: 100}},
	}})
	if !ch.OK || ch.Candidate.ID != 3 {
		t.Fatalf("chose %+v (%s), want node 3", ch.Candidate, ch.Reason)
	}
}

func TestRemoveMemberTombstone(t *testing.T) {
	h := newHarness(t, testConfig(), 3)
	h.quiet = true
	h.stabilize()
	h.elect(2)
	if err := h.leader().ProposeBootstrap(1); err != nil {
		t.Fatal(err)
	}
	h.stabilize()
	if err := h.leader().RemoveMember(1); !errors.Is(err, ErrRejected) {
		t.Fatalf("removing the primary: %v, want a rejection", err)
	}
	if err := h.leader().RemoveMember(3); err != nil {
		t.Fatal(err)
	}
	h.stabilize()
	st := h.leader().State()
	if !slices.Equal(st.Voters, []uint64{1, 2}) || !slices.Equal(st.Removed, []uint64{3}) {
		t.Fatalf("after removing 3: voters %v removed %v", st.Voters, st.Removed)
	}
	if err := h.leader().AddMember(3); err != nil {
		t.Fatal(err)
	}
	h.stabilize()
	st = h.leader().State()
	if !slices.Equal(st.Voters, []uint64{1, 2, 3}) || len(st.Removed) != 0 {
		t.Fatalf("after adding 3 back: voters %v removed %v", st.Voters, st.Removed)
	}
}
