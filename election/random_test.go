package election

import (
	"math/rand/v2"
	"testing"
)

// TestRandomFaults runs seeded fault schedules (crashes, restarts,
// isolations, heals, detector reports, releases) with raft's own elections
// (short ElectionTick) and relies on the harness's invariant checks: never
// two valid leases at once, no older lease alive when a newer token
// applies. It also checks that tokens on every node only grow.
func TestRandomFaults(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	for seed := uint64(0); seed < uint64(seeds); seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		cfg := testConfig()
		cfg.ElectionTick = 10
		h := newHarness(t, cfg, 3)
		h.quiet = true
		h.stabilize()
		for i := 0; i < 40 && !anyLeader(h); i++ {
			h.tick(1)
		}
		if !anyLeader(h) {
			t.Fatalf("seed %d: no leader", seed)
		}
		if err := h.leader().ProposeBootstrap(1); err != nil {
			t.Fatal(err)
		}
		tokens := map[uint64]uint64{}
		for step := 0; step < 300; step++ {
			for _, id := range h.ids {
				if n := h.nodes[id]; n != nil {
					n.SetLocal(Local{Healthy: true, Position: Position{Timeline: 1, LSN: uint64(rng.IntN(1000))}})
				}
			}
			switch r := rng.IntN(100); {
			case r < 4:
				id := h.ids[rng.IntN(3)]
				if h.nodes[id] != nil {
					h.crash(id)
				} else {
					h.restart(id)
				}
			case r < 8:
				h.cut[h.ids[rng.IntN(3)]] = true
			case r < 12:
				clear(h.cut)
			case r < 20:
				for _, id := range h.ids {
					if n := h.nodes[id]; n != nil && n.IsLeader() {
						n.ReportPrimaryFailed("random")
					}
				}
			case r < 22:
				for _, id := range h.ids {
					if n := h.nodes[id]; n != nil {
						n.Release("random")
					}
				}
			}
			h.stabilize()
			h.tick(1 + rng.IntN(5))
			for _, id := range h.ids {
				if n := h.nodes[id]; n != nil {
					if tok := n.State().Token; tok < tokens[id] {
						t.Fatalf("seed %d: n%d token went back %d -> %d", seed, id, tokens[id], tok)
					} else {
						tokens[id] = tok
					}
				}
			}
		}
		if h.maxToken < 2 {
			t.Logf("seed %d: no failover happened (max token %d)", seed, h.maxToken)
		}
	}
}

func anyLeader(h *harness) bool {
	for _, id := range h.ids {
		if n := h.nodes[id]; n != nil && n.IsLeader() {
			return true
		}
	}
	return false
}
