package storage

import (
	"testing"

	"github.com/ramd/ramd/election"
)

// drive handles Readys the way the daemon does (persist, then Advance)
// until cond holds, ticking in between.
func drive(t *testing.T, n *election.Node, s *Store, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		for n.HasReady() {
			rd := n.Ready()
			if err := s.Save(rd); err != nil {
				t.Fatal(err)
			}
			n.Advance()
		}
		if cond() {
			return
		}
		n.Tick()
	}
	t.Fatalf("condition not reached; state %+v", n.State())
}

func TestNodeRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	if _, ok := s.Load(); ok {
		t.Fatal("fresh store has state")
	}
	n, err := election.NewNode(election.Config{ID: 1, Peers: []uint64{1}})
	if err != nil {
		t.Fatal(err)
	}
	drive(t, n, s, func() bool { return len(n.State().Voters) == 1 })
	if err := n.Campaign(); err != nil {
		t.Fatal(err)
	}
	drive(t, n, s, n.IsLeader)
	if err := n.ProposeBootstrap(1); err != nil {
		t.Fatal(err)
	}
	drive(t, n, s, func() bool { return n.State().Primary == 1 && n.LeaseValid() })
	before := n.State()
	if before.Token == 0 {
		t.Fatalf("no token after bootstrap: %+v", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, dir)
	defer s.Close()
	p, ok := s.Load()
	if !ok {
		t.Fatal("nothing persisted")
	}
	n2, err := election.NewNode(election.Config{ID: 1, Restart: p})
	if err != nil {
		t.Fatal(err)
	}
	// The committed log is re-applied on the first Readys after restart.
	drive(t, n2, s, func() bool { return n2.State().Primary != 0 })
	after := n2.State()
	if after.Primary != before.Primary || after.Token != before.Token || after.Bootstrapped != before.Bootstrapped ||
		len(after.Voters) != 1 || after.Voters[0] != 1 {
		t.Fatalf("restored state %+v, want %+v", after, before)
	}
	// And the node carries on from there.
	if err := n2.Campaign(); err != nil {
		t.Fatal(err)
	}
	drive(t, n2, s, n2.IsLeader)
	if st := n2.State(); st.Token != before.Token {
		t.Fatalf("token changed after re-election: %+v", st)
	}
}
