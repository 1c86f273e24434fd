package election

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ramd/ramd/mesh"
)

func cand(id uint64, tl uint32, lsn uint64) Candidate {
	return Candidate{ID: id, Alive: true, Healthy: true, Position: Position{tl, lsn}}
}

func TestChooseTable(t *testing.T) {
	with := func(c Candidate, f func(*Candidate)) Candidate { f(&c); return c }
	for _, tc := range []struct {
		name string
		in   ChooseInput
		want uint64 // 0: nobody
		why  string
	}{
		{"highest lsn", ChooseInput{Candidates: []Candidate{cand(2, 1, 100), cand(3, 1, 200)}}, 3, ""},
		{"timeline first", ChooseInput{Candidates: []Candidate{cand(2, 2, 100), cand(3, 1, 200)}}, 2, ""},
		{"priority breaks ties", ChooseInput{Candidates: []Candidate{cand(2, 1, 100), with(cand(3, 1, 100), func(c *Candidate) { c.Priority = 5 })}}, 3, ""},
		{"lowest id breaks ties", ChooseInput{Candidates: []Candidate{cand(3, 1, 100), cand(2, 1, 100)}}, 2, ""},
		{"old primary excluded", ChooseInput{Exclude: 1, Candidates: []Candidate{cand(1, 1, 900), cand(2, 1, 100)}}, 2, ""},
		{"nofailover", ChooseInput{Candidates: []Candidate{with(cand(2, 1, 900), func(c *Candidate) { c.NoFailover = true }), cand(3, 1, 100)}}, 3, ""},
		{"unhealthy and dead", ChooseInput{Candidates: []Candidate{with(cand(2, 1, 9), func(c *Candidate) { c.Healthy = false }), with(cand(3, 1, 9), func(c *Candidate) { c.Alive = false })}}, 0, "waiting: no eligible candidate (2: not healthy; 3: not alive)"},
		{"detached", ChooseInput{Candidates: []Candidate{with(cand(2, 1, 9), func(c *Candidate) { c.Detached = true })}}, 0, "detached"},
		{"laggard excluded", ChooseInput{MaximumLagOnFailover: 50, Candidates: []Candidate{cand(2, 1, 100), with(cand(3, 1, 200), func(c *Candidate) { c.Healthy = false })}}, 0, "100 bytes behind"},
		{"laggard allowed", ChooseInput{MaximumLagOnFailover: 50, AllowLaggard: true, Candidates: []Candidate{cand(2, 1, 100), with(cand(3, 1, 200), func(c *Candidate) { c.Healthy = false })}}, 2, "lagging, allowed"},
		{"sync: waiting for reports", ChooseInput{Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3, 4}, NumSync: 2}, Candidates: []Candidate{cand(2, 1, 100)}}, 0, "1 of 3 synchronous standbys reported, need 2"},
		{"sync: bar excludes the async one", ChooseInput{Sync: SyncState{Mode: SyncStrict, Members: []uint64{2, 3}, NumSync: 1}, Candidates: []Candidate{cand(2, 1, 100), cand(3, 1, 150), with(cand(4, 1, 120), func(c *Candidate) { c.Priority = 9 })}}, 3, ""},
		{"sync: best sync member unhealthy", ChooseInput{Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1}, Candidates: []Candidate{cand(2, 1, 100), with(cand(3, 1, 150), func(c *Candidate) { c.Healthy = false })}}, 0, "below the synchronous bar"},
		{"target", ChooseInput{Target: 2, Candidates: []Candidate{cand(2, 1, 100), cand(3, 1, 150)}}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Choose(tc.in)
			if got.OK != (tc.want != 0) || (got.OK && got.Candidate.ID != tc.want) || !strings.Contains(got.Reason, tc.why) {
				t.Errorf("got %+v, want %d (%q)", got, tc.want, tc.why)
			}
			if !got.OK && !strings.HasPrefix(got.Reason, "waiting: ") {
				t.Errorf("reason %q lacks the waiting prefix", got.Reason)
			}
		})
	}
}

func TestCandidateFromMember(t *testing.T) {
	c := CandidateFromMember(mesh.Member{Liveness: mesh.Alive, State: mesh.NodeState{NodeID: 4, Role: mesh.RoleReplica, PGRunning: true, Healthy: true, DataState: mesh.DataReady, Timeline: 2, LSN: 7, Tags: map[string]string{"nofailover": "true", "priority": "3"}}})
	if c.ID != 4 || !c.Alive || !c.Healthy || !c.NoFailover || c.Priority != 3 || c.Position != (Position{2, 7}) || c.Detached {
		t.Errorf("%+v", c)
	}
}

// TestChooseProperties: the chosen candidate is eligible and never behind
// (by position, then priority) another eligible candidate; without lag or
// sync limits, somebody is chosen whenever someone is eligible.
func TestChooseProperties(t *testing.T) {
	for seed := uint64(0); seed < 3000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		var in ChooseInput
		n := 1 + rng.IntN(6)
		for i := 1; i <= n; i++ {
			in.Candidates = append(in.Candidates, Candidate{
				ID: uint64(i), Alive: rng.IntN(5) > 0, Healthy: rng.IntN(5) > 0, NoFailover: rng.IntN(6) == 0,
				Position: Position{uint32(1 + rng.IntN(2)), uint64(rng.IntN(5) * 100)}, Priority: rng.IntN(2),
			})
		}
		in.Exclude = uint64(rng.IntN(n + 1))
		limited := rng.IntN(2) == 0
		if limited {
			in.MaximumLagOnFailover = uint64(rng.IntN(300))
			in.AllowLaggard = rng.IntN(2) == 0
		}
		got := Choose(in)
		var best Position
		for _, c := range in.Candidates {
			if c.Alive && c.ID != in.Exclude && c.Position.Compare(best) > 0 {
				best = c.Position
			}
		}
		anyEligible := false
		for _, c := range in.Candidates {
			eligible := c.Alive && c.Healthy && !c.NoFailover && c.ID != in.Exclude
			anyEligible = anyEligible || eligible
			if got.OK && eligible && betterFirst(c, got.Candidate) < 0 && (!limited || lag(best, c.Position) <= in.MaximumLagOnFailover) {
				t.Fatalf("seed %d: chose %+v over better %+v", seed, got.Candidate, c)
			}
		}
		if got.OK {
			c := got.Candidate
			if !c.Alive || !c.Healthy || c.NoFailover || c.ID == in.Exclude {
				t.Fatalf("seed %d: chose ineligible %+v", seed, c)
			}
		} else if anyEligible && (!limited || in.AllowLaggard) {
			t.Fatalf("seed %d: nobody chosen among eligible: %s", seed, got.Reason)
		}
	}
}
