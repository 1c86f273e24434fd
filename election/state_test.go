package election

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func mustEncode(t *testing.T, c Command) []byte {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCommandRoundTrip(t *testing.T) {
	cmds := []Command{
		{Type: CmdBootstrap, Bootstrap: &BootstrapCmd{Primary: 1, Voters: []uint64{1, 2, 3}}},
		{Type: CmdPromote, Promote: &PromoteCmd{Token: 2, New: 2, Old: 1, Reason: "x", LSN: 5}},
		{Type: CmdSetMaintenance, Maintenance: &MaintenanceCmd{On: true}},
		{Type: CmdSwitchover, Switchover: &SwitchoverCmd{From: 1, To: 2}},
		{Type: CmdAddVoter, Voter: &VoterCmd{ID: 4}},
	}
	for _, c := range cmds {
		got, err := DecodeCommand(mustEncode(t, c))
		if err != nil {
			t.Fatalf("%s: %v", c.Type, err)
		}
		c.Version = CommandVersion
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip %+v -> %+v", c, got)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, in := range []string{
		``, `{`, `null`, `[]`, `{"type":"promote","v":1}`,
		`{"type":"nope","v":1,"voter":{"id":1}}`,
		`{"type":"promote","v":2,"promote":{"token":2,"new":2}}`,
		`{"type":"promote","v":1,"promote":{"token":2,"new":0}}`,
		`{"type":"promote","v":1,"promote":{"token":2,"new":2},"voter":{"id":1}}`,
		`{"type":"promote","v":1,"promote":{"token":2,"new":2},"extra":1}`,
		`{"type":"promote","v":1,"promote":{"token":2,"new":2}} {}`,
		`{"type":"add-voter","v":1,"voter":{"id":-1}}`,
	} {
		if _, err := DecodeCommand([]byte(in)); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("%q: err = %v, want ErrMalformedCommand", in, err)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"type":"promote","v":1,"promote":{"token":2,"new":2}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err == nil {
			var s ClusterState
			_ = s.Apply(c)
		}
	})
}

func bootstrapped(t *testing.T) ClusterState {
	var s ClusterState
	if err := s.Apply(Command{Type: CmdBootstrap, Version: 1, Bootstrap: &BootstrapCmd{Primary: 1, Voters: []uint64{3, 1, 2}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func promote(token, old, new uint64) Command {
	return Command{Type: CmdPromote, Version: 1, Promote: &PromoteCmd{Token: token, Old: old, New: new, Reason: "test"}}
}

func TestApply(t *testing.T) {
	s := bootstrapped(t)
	if s.Primary != 1 || s.Token != 1 || !reflect.DeepEqual(s.Voters, []uint64{1, 2, 3}) || s.Quorum() != 2 {
		t.Fatalf("after bootstrap: %+v", s)
	}
	if err := s.Apply(Command{Type: CmdBootstrap, Version: 1, Bootstrap: &BootstrapCmd{Primary: 2}}); !errors.Is(err, ErrRejected) {
		t.Errorf("second bootstrap: %v", err)
	}
	if err := s.Apply(promote(3, 1, 2)); !errors.Is(err, ErrStaleToken) || err.Error() == "" {
		t.Errorf("skipping token: %v", err)
	}
	if err := s.Apply(promote(1, 1, 2)); !errors.Is(err, ErrStaleToken) {
		t.Errorf("reusing token: %v", err)
	}
	if err := s.Apply(promote(2, 3, 2)); !errors.Is(err, ErrRejected) {
		t.Errorf("wrong old: %v", err)
	}
	if err := s.Apply(promote(2, 1, 1)); !errors.Is(err, ErrRejected) {
		t.Errorf("promoting the current primary again without reclaim: %v", err)
	}
	bad := promote(2, 1, 2)
	bad.Promote.Reclaim = true
	if err := s.Apply(bad); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "reclaim") {
		t.Errorf("a reclaim naming another node: %v", err)
	}
	if err := s.Apply(promote(2, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if s.Primary != 2 || s.Token != 2 || len(s.History) != 2 {
		t.Errorf("after promote: %+v", s)
	}
	// The old primary, back with its history intact, promoted again.
	again := promote(3, 2, 2)
	again.Promote.Reclaim = true
	if err := s.Apply(again); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	if s.Primary != 2 || s.Token != 3 || len(s.History) != 3 {
		t.Errorf("after reclaim: %+v", s)
	}
	for id := uint64(4); id <= 6; id++ {
		err := s.Apply(Command{Type: CmdAddVoter, Version: 1, Voter: &VoterCmd{ID: id}})
		if (id == 6) != errors.Is(err, ErrRejected) {
			t.Errorf("add voter %d: %v", id, err)
		}
	}
	if len(s.Voters) != MaxVoters {
		t.Errorf("voters %v", s.Voters)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := RestoreClusterState(snap)
	if err != nil || !reflect.DeepEqual(r, s) {
		t.Errorf("restore: %v\n%+v\n%+v", err, r, s)
	}
	if _, err := RestoreClusterState([]byte("{")); err == nil {
		t.Error("restore of garbage succeeded")
	}
}

// TestApplyTokensIncrease applies random command sequences and checks the
// token never decreases, grows by exactly one at every change of primary,
// and that a rejected command leaves the state untouched.
func TestApplyTokensIncrease(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		s := bootstrapped(t)
		for i := 0; i < 200; i++ {
			var c Command
			switch rng.IntN(4) {
			case 0, 1:
				c = promote(s.Token+uint64(rng.IntN(3))-1+uint64(rng.IntN(2)), uint64(1+rng.IntN(3)), uint64(1+rng.IntN(3)))
				c.Promote.Reclaim = rng.IntN(4) == 0
			case 2:
				c = Command{Type: CmdSetMaintenance, Version: 1, Maintenance: &MaintenanceCmd{On: rng.IntN(2) == 0}}
			case 3:
				c = Command{Type: CmdSwitchover, Version: 1, Switchover: &SwitchoverCmd{From: uint64(1 + rng.IntN(3))}}
			}
			before := s.Clone()
			err := s.Apply(c)
			if err != nil {
				if !reflect.DeepEqual(before, s) {
					t.Fatalf("seed %d: rejected %+v changed the state", seed, c)
				}
				if c.Type == CmdPromote && c.Promote.Token != 0 && c.Promote.Token != before.Token+1 && !errors.Is(err, ErrStaleToken) {
					t.Fatalf("seed %d: wrong error %v", seed, err)
				}
				continue
			}
			changed := s.Primary != before.Primary || c.Type == CmdPromote && c.Promote.Reclaim
			if s.Token < before.Token || changed != (s.Token == before.Token+1) {
				t.Fatalf("seed %d: token %d->%d primary %d->%d", seed, before.Token, s.Token, before.Primary, s.Primary)
			}
		}
		seen := map[uint64]bool{}
		for _, h := range s.History {
			if seen[h.Token] {
				t.Fatalf("seed %d: token %d reused", seed, h.Token)
			}
			seen[h.Token] = true
		}
	}
}
