package election

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ramd/ramd/mesh"
)

func cand(id uint64, tl uint32, lsn uint64) Candidate {
	return Candidate{ID: id, Alive: true, Healthy: true, Position: Position{Timeline: tl, LSN: lsn}}
}

// tok gives c's position the writer token t.
func tok(c Candidate, t uint64) Candidate {
	c.Position.Token, c.Position.TokenKnown = t, true
	return c
}

// fenced is the old primary id, back and fenced with its history intact
// (it reports no position: its PostgreSQL is stopped).
func fenced(id uint64) Candidate {
	return Candidate{ID: id, Alive: true, FencedPrimary: true}
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
		// Seed 862's shape: the old primary (token 1) came back, promoted
		// again on its own branch and reached timeline 3 too, further
		// than the token-2 standbys on the real timeline 3.
		{"token beats a reused timeline", ChooseInput{Candidates: []Candidate{tok(cand(1, 3, 1273), 1), tok(cand(4, 3, 1155), 2), tok(cand(5, 3, 1150), 2)}}, 4, ""},
		{"token beats a higher timeline", ChooseInput{Candidates: []Candidate{tok(cand(2, 4, 900), 2), tok(cand(3, 3, 700), 3)}}, 3, ""},
		{"sync: the bar is on the newest token", ChooseInput{Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3, 4}, NumSync: 1}, Candidates: []Candidate{tok(cand(2, 4, 906), 2), tok(cand(3, 4, 760), 3), tok(cand(4, 4, 760), 3)}}, 3, ""},
		{"sync: divergent branch below the bar", ChooseInput{Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3, 4}, NumSync: 1}, Candidates: []Candidate{tok(cand(2, 4, 906), 2), tok(with(cand(3, 4, 760), func(c *Candidate) { c.Healthy = false }), 3), tok(cand(4, 4, 700), 3)}}, 0, "2: at 4/38A (token 2), below the synchronous bar 4/2F8 (token 3)"},
		{"one reporter without a token: timeline order for all", ChooseInput{Candidates: []Candidate{cand(2, 4, 900), tok(cand(3, 3, 700), 3)}}, 2, ""},
		// maximum_lag_on_failover against the failed primary's last seen
		// position (Patroni's rule), asynchronous mode only.
		{"async: every replica too far behind the failed primary", ChooseInput{MaximumLagOnFailover: 1000, PrimaryLast: &Position{Timeline: 1, LSN: 10_000}, Candidates: []Candidate{cand(2, 1, 5000), cand(3, 1, 8000)}}, 0, "3: 2000 bytes behind the failed primary's last seen position"},
		{"async: the one within the bound", ChooseInput{MaximumLagOnFailover: 1000, PrimaryLast: &Position{Timeline: 1, LSN: 10_000}, Candidates: []Candidate{with(cand(2, 1, 9500), func(c *Candidate) { c.Priority = -1 }), cand(3, 1, 8000)}}, 2, ""},
		{"async: laggards allowed", ChooseInput{MaximumLagOnFailover: 1000, AllowLaggard: true, PrimaryLast: &Position{Timeline: 1, LSN: 10_000}, Candidates: []Candidate{cand(2, 1, 5000), cand(3, 1, 8000)}}, 3, "lagging, allowed"},
		{"async: check disabled", ChooseInput{PrimaryLast: &Position{Timeline: 1, LSN: 10_000}, Candidates: []Candidate{cand(2, 1, 5000)}}, 2, ""},
		{"sync: the failed primary's position is not used", ChooseInput{MaximumLagOnFailover: 1000, PrimaryLast: &Position{Timeline: 1, LSN: 10_000}, Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1}, Candidates: []Candidate{cand(2, 1, 5000), cand(3, 1, 5000)}}, 2, ""},
		// Reclaim: the failed primary, back and fenced with its history
		// intact, is chosen again when no replica qualifies.
		{"reclaim: no healthy replica", ChooseInput{Exclude: 1, Candidates: []Candidate{fenced(1), with(cand(2, 1, 100), func(c *Candidate) { c.Healthy = false }), cand(3, 0, 0)}}, 1, "no replica qualifies (1: old primary; 2: not healthy; 3: position unknown)"},
		{"reclaim: synchronous standbys not reported", ChooseInput{Exclude: 1, Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1}, Candidates: []Candidate{fenced(1), cand(2, 0, 0)}}, 1, "0 of 2 synchronous standbys reported"},
		{"reclaim: a qualifying replica is preferred", ChooseInput{Exclude: 1, Candidates: []Candidate{fenced(1), cand(2, 1, 100)}}, 2, ""},
		{"reclaim: not a switchover", ChooseInput{Exclude: 1, After: &Position{Timeline: 1, LSN: 500}, Candidates: []Candidate{fenced(1), cand(2, 1, 100)}}, 0, "not beyond the old primary's final record"},
		{"reclaim: not a manual failover", ChooseInput{Exclude: 1, Target: 2, Candidates: []Candidate{fenced(1), with(cand(2, 1, 100), func(c *Candidate) { c.Healthy = false })}}, 0, "2: not healthy"},
		{"reclaim: only a fenced old primary", ChooseInput{Exclude: 1, Candidates: []Candidate{cand(1, 1, 900), with(cand(2, 1, 100), func(c *Candidate) { c.Healthy = false })}}, 0, "1: old primary"},
		{"reclaim: not when dead or nofailover", ChooseInput{Exclude: 1, Candidates: []Candidate{with(fenced(1), func(c *Candidate) { c.NoFailover = true }), with(cand(2, 1, 100), func(c *Candidate) { c.Healthy = false })}}, 0, "waiting"},
		{"unknown position never chosen", ChooseInput{Candidates: []Candidate{cand(2, 0, 0)}}, 0, "2: position unknown"},
		{"sync: unknown position not counted", ChooseInput{Sync: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3, 4}, NumSync: 1}, Candidates: []Candidate{cand(2, 2, 176), cand(3, 0, 0), cand(4, 2, 176)}}, 0, "2 of 3 synchronous standbys reported, need 3"},
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
	if c.ID != 4 || !c.Alive || !c.Healthy || !c.NoFailover || c.Priority != 3 || c.Position != (Position{Timeline: 2, LSN: 7}) || c.Detached {
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
		tokens := rng.IntN(3) // 0: none, 1: every reporter, 2: some
		for i := 1; i <= n; i++ {
			p := Position{Timeline: uint32(1 + rng.IntN(2)), LSN: uint64(rng.IntN(5) * 100)}
			if tokens == 1 || tokens == 2 && rng.IntN(2) == 0 {
				p.Token, p.TokenKnown = uint64(rng.IntN(3)), true
			}
			if rng.IntN(8) == 0 {
				p = Position{} // not measured
			}
			in.Candidates = append(in.Candidates, Candidate{
				ID: uint64(i), Alive: rng.IntN(5) > 0, Healthy: rng.IntN(5) > 0, NoFailover: rng.IntN(6) == 0,
				Position: p, Priority: rng.IntN(2),
			})
		}
		in.Exclude = uint64(rng.IntN(n + 1))
		if in.Exclude != 0 && rng.IntN(3) == 0 {
			in.Candidates[in.Exclude-1].FencedPrimary = true
		}
		limited := rng.IntN(2) == 0
		if limited {
			in.MaximumLagOnFailover = uint64(rng.IntN(300))
			in.AllowLaggard = rng.IntN(2) == 0
		}
		if rng.IntN(2) == 0 {
			in.PrimaryLast = &Position{Timeline: 2, LSN: uint64(rng.IntN(6) * 100)}
		}
		got := Choose(in)
		cs := oneOrder(in.Candidates)
		allTokens := !slices.ContainsFunc(in.Candidates, func(c Candidate) bool { return c.Position.Known() && !c.Position.TokenKnown })
		for i, c := range cs {
			if c.Position.TokenKnown != (allTokens && in.Candidates[i].Position.TokenKnown) {
				t.Fatalf("seed %d: oneOrder mixes the orders: %+v", seed, cs)
			}
		}
		var best Position
		for _, c := range cs {
			if c.Alive && c.ID != in.Exclude && c.Position.Known() && c.Position.Compare(best) > 0 {
				best = c.Position
			}
		}
		// within: not excluded by either lag rule.
		within := func(c Candidate) bool {
			if !limited || in.MaximumLagOnFailover == 0 {
				return true
			}
			return lag(best, c.Position) <= in.MaximumLagOnFailover &&
				(in.PrimaryLast == nil || lag(*in.PrimaryLast, c.Position) <= in.MaximumLagOnFailover)
		}
		anyEligible := false
		for _, c := range cs {
			eligible := c.Alive && c.Healthy && !c.NoFailover && c.ID != in.Exclude && c.Position.Known()
			anyEligible = anyEligible || eligible
			if got.OK && eligible && betterFirst(c, got.Candidate) < 0 && within(c) {
				t.Fatalf("seed %d: chose %+v over better %+v", seed, got.Candidate, c)
			}
		}
		if got.OK && got.Candidate.ID == in.Exclude {
			// Reclaimed: only the fenced old primary, and only when no
			// replica qualified.
			c := got.Candidate
			if !c.FencedPrimary || !c.Alive || c.NoFailover || c.Detached {
				t.Fatalf("seed %d: reclaimed %+v", seed, c)
			}
			for _, o := range cs {
				if o.ID != in.Exclude && o.Alive && o.Healthy && !o.NoFailover && !o.Detached && o.Position.Known() && within(o) {
					t.Fatalf("seed %d: reclaimed the old primary although %+v qualifies", seed, o)
				}
			}
			continue
		}
		if got.OK {
			c := got.Candidate
			if !c.Alive || !c.Healthy || c.NoFailover || c.ID == in.Exclude || !c.Position.Known() {
				t.Fatalf("seed %d: chose ineligible %+v", seed, c)
			}
			if !in.AllowLaggard && !within(c) {
				t.Fatalf("seed %d: chose %+v, beyond maximum_lag_on_failover %d (best %v, failed primary %v)", seed, c, in.MaximumLagOnFailover, best, in.PrimaryLast)
			}
		} else if anyEligible && (!limited || in.AllowLaggard) {
			t.Fatalf("seed %d: nobody chosen among eligible: %s", seed, got.Reason)
		}
	}
}
