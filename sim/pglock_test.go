package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The pglock backend in the simulator. LockNode has no internal
// randomness (unlike raft), so these runs need no pinning: a seed is a
// run.

func pglockCfg(nodes int, sync bool) Config {
	return Config{Nodes: nodes, Election: "pglock", Sync: sync, Duration: 45 * time.Second, LivenessBound: 20 * time.Second}
}

// TestPglockRandom: random fault schedules with every fault kind,
// including the coordination database's (cut from some or all nodes, one
// way too; restarted; slow beyond the op timeout; a session terminated),
// async and quorum sync, five and two nodes.
func TestPglockRandom(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		sync  bool
		seeds int
	}{{5, false, 300}, {5, true, 150}, {2, false, 150}, {2, true, 50}} {
		t.Run(fmt.Sprintf("nodes%d-sync%v", tc.nodes, tc.sync), func(t *testing.T) {
			seeds := tc.seeds
			if testing.Short() {
				seeds /= 10
			}
			s := RunManyWorkers(pglockCfg(tc.nodes, tc.sync), seeds, 2, nil)
			report(t, s)
			if len(s.Violations) > 0 {
				printFirst(t, s.Violations)
				t.Fatalf("%d of %d runs violated an invariant", len(s.Violations), seeds)
			}
			if s.Failovers < seeds/4 {
				t.Fatalf("only %d failovers in %d runs: the faults are not reaching the primary", s.Failovers, seeds)
			}
			if tc.sync && s.Acked == 0 {
				t.Fatal("no write acknowledged in sync mode")
			}
		})
	}
}

// TestPglockScheduleHasDatabaseFaults: the random schedule of a pglock
// run injects the database's faults, and a quorum run's schedule is what
// it was before the pglock backend existed (no database steps; the same
// seed gives the same steps whatever the backend, up to the database's).
func TestPglockScheduleHasDatabaseFaults(t *testing.T) {
	kinds := map[string]int{}
	for seed := uint64(1); seed <= 30; seed++ {
		cfg := pglockCfg(5, false)
		cfg.Seed = seed
		cfg.setDefaults()
		sch, err := schedule(cfg, newSchedRng(cfg))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sch {
			kinds[st.Op]++
		}
		q := cfg
		q.Election = "quorum"
		qs, err := schedule(q, newSchedRng(q))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range qs {
			if strings.HasPrefix(st.Op, "db") {
				t.Fatalf("quorum schedule has %s", st)
			}
		}
	}
	for _, k := range []string{"dbcut", "dbrestart", "dbslow", "dbkill", "dbjitter"} {
		if kinds[k] == 0 {
			t.Fatalf("no %s in 30 pglock schedules: %v", k, kinds)
		}
	}
}

// TestPglockBugsCaught: deliberately broken statements. Each guard alone
// is backed up by another (defence in depth), so breaking one must leave
// the runs clean, and breaking both must be caught:
//
//   - RenewIgnoresToken alone: a revoked primary keeps renewing, but the
//     promotion's compare-and-set requires its lease over on the
//     database's clock, so nobody is promoted while it renews.
//   - PromoteIgnoresLease alone: the coordinator itself waits out the
//     remaining lease its revoke reported (election.WaitFor), and a
//     revoked token cannot be renewed.
//   - both: a primary cut off from its peers but not from the database is
//     revoked, keeps renewing, and is replaced while it still holds a
//     valid lease (stale-lease at the commit, or two writers).
//
// A simulator that stopped checking would fail the third case.
func TestPglockBugsCaught(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bugs   DBBugs
		seeds  int
		caught bool
	}{
		{"renew-ignores-token", DBBugs{RenewIgnoresToken: true}, 40, false},
		{"promote-ignores-lease", DBBugs{PromoteIgnoresLease: true}, 40, false},
		{"both", DBBugs{RenewIgnoresToken: true, PromoteIgnoresLease: true}, 60, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pglockCfg(5, false)
			cfg.DBBugs = tc.bugs
			s := RunManyWorkers(cfg, tc.seeds, 2, nil)
			switch {
			case tc.caught && len(s.Violations) == 0:
				t.Fatalf("no violation in %d seeds: the simulator stopped catching a primary renewed after its revocation and replaced before its lease ended", tc.seeds)
			case tc.caught:
				for _, r := range s.Violations {
					if v := r.Violation.Invariant; v != InvStaleLease && v != InvTwoWriters {
						printFirst(t, []Result{r})
						t.Fatalf("seed %d: unexpected violation %s", r.Config.Seed, r.Violation)
					}
				}
				t.Logf("%d of %d seeds caught; first:", len(s.Violations), tc.seeds)
				printFirst(t, s.Violations)
			case len(s.Violations) > 0:
				printFirst(t, s.Violations)
				t.Fatalf("one guard broken, the other should hold: %d violations", len(s.Violations))
			}
		})
	}
}

// TestPglockDeterministic: a pglock seed replays bit for bit, with no
// pinning of any library's randomness, and so does its recorded schedule.
func TestPglockDeterministic(t *testing.T) {
	cfg := pglockCfg(5, true)
	cfg.Seed = 11
	a, b := Run(cfg), Run(cfg)
	if !slices.Equal(a.Trace, b.Trace) {
		t.Fatal("same seed: traces differ")
	}
	sched, err := ParseSchedule(FormatSchedule(a.Schedule))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sched, a.Schedule) {
		t.Fatalf("schedule does not round-trip:\n%s", FormatSchedule(a.Schedule))
	}
	cfg.Schedule = sched
	if c := Run(cfg); !slices.Equal(a.Trace, c.Trace) {
		t.Fatal("replaying the recorded schedule gives a different trace")
	}
}

// TestPglockNodeCounts: 2 to 9 nodes; 1 is refused, and so are 2 with
// the quorum backend (which needs a majority of daemons).
func TestPglockNodeCounts(t *testing.T) {
	for _, n := range []int{3, 9} {
		s := RunManyWorkers(pglockCfg(n, false), 6, 2, nil)
		if len(s.Violations) > 0 {
			printFirst(t, s.Violations)
			t.Fatalf("%d nodes: %d violations", n, len(s.Violations))
		}
	}
	for _, c := range []Config{{Nodes: 1, Election: "pglock"}, {Nodes: 2}, {Nodes: 3, Election: "etcd"}} {
		if r := Run(c); r.Violation == nil || r.Violation.Invariant != "config" {
			t.Fatalf("%d nodes, election %q accepted", c.Nodes, c.Election)
		}
	}
}

// TestPglockStaleRowRegression replays the runs that found LockNode
// going back to an older token (before election.LockNode.applyRow ignored
// rows older than its state): every packet delayed up to 300ms, so the
// answers on a daemon's two connections overtake each other, and the
// primary frozen twice, then a partition. A renewal's answer holding the
// row from before a promotion arrived after a read that showed the
// promotion; the node took it, and an old primary was told to promote
// again under its superseded token (seed 51: "n1 applied token 1 after
// 2", then "promote token=1"). These seeds failed with token-order
// before the fix.
func TestPglockStaleRowRegression(t *testing.T) {
	sch, err := ParseSchedule(`
		at 0s net 0 0 300ms
		at 10s pause primary 5s
		at 20s pause primary 5s
		at 30s halves 7
		at 36s heal`)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{17, 36, 51, 146, 154, 260} {
		r := Run(Config{Nodes: 5, Election: "pglock", Seed: seed, Schedule: sch, Duration: 60 * time.Second})
		if r.Violation != nil {
			printFirst(t, []Result{r})
			t.Fatalf("seed %d: %v", seed, r.Violation)
		}
		if r.Failovers < 2 {
			t.Fatalf("seed %d: %d failovers: the run no longer exercises failovers under reordered answers", seed, r.Failovers)
		}
	}
}
