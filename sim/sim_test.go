package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/ramd/ramd/election"
)

// testCfg keeps runs short enough for 700 seeds in the package's time
// budget: faults for 20s, then a 25s healed tail judged with a 20s
// liveness bound.
func testCfg() Config {
	return Config{Nodes: 5, Duration: 45 * time.Second, LivenessBound: 20 * time.Second}
}

func report(t *testing.T, s Summary) {
	t.Helper()
	var b strings.Builder
	PrintSummary(&b, s)
	t.Log("\n" + b.String())
}

func printFirst(t *testing.T, rs []Result) {
	t.Helper()
	if len(rs) > 0 {
		var b strings.Builder
		PrintTrace(&b, rs[0])
		t.Log("\n" + b.String())
	}
}

func TestRandomAsync(t *testing.T) {
	seeds := 500
	if testing.Short() {
		seeds = 50
	}
	s := pinnedRunMany(t, testCfg(), seeds, nil)
	report(t, s)
	if len(s.Violations) > 0 {
		printFirst(t, s.Violations)
		t.Fatalf("%d of %d runs violated an invariant", len(s.Violations), seeds)
	}
	if s.Failovers < seeds/4 {
		t.Fatalf("only %d failovers in %d runs: the faults are not reaching the primary", s.Failovers, seeds)
	}
}

// TestRandomSync: synchronous_mode=quorum (k=1). The invariant that
// matters here is acked-write-lost: the coordinator must promote only a
// replica at or above the highest position reported by n-k+1 standbys,
// and wait until that many reported.
func TestRandomSync(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	cfg := testCfg()
	cfg.Sync = true
	s := pinnedRunMany(t, cfg, seeds, nil)
	report(t, s)
	if len(s.Violations) > 0 {
		printFirst(t, s.Violations)
		var seedsHit []string
		for _, r := range s.Violations {
			seedsHit = append(seedsHit, strconv.FormatUint(r.Config.Seed, 10))
		}
		t.Fatalf("%d of %d runs violated an invariant, seeds %s", len(s.Violations), seeds, strings.Join(seedsHit, " "))
	}
}

// TestSyncBugRegression pins the run that found the synchronous-mode bug
// (seed 60: the primary's only flushing standby ends up on the minority
// side of a partition, and the coordinator used to promote from the
// majority side because it called Choose without the sync setup). With
// ClusterState.Sync passed to Choose the coordinator waits for the
// standby instead, and the run is clean.
func TestSyncBugRegression(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 60)
	cfg := Config{Nodes: 5, Sync: true, Seed: 60}
	r := Run(cfg)
	if r.Violation != nil {
		printFirst(t, []Result{r})
		t.Fatal(r.Violation)
	}
	if r.Acked == 0 {
		t.Fatal("no write acknowledged: the regression run no longer exercises sync commits")
	}
}

// TestAckedWriteLostRegressions replays every seed that ever lost an
// acknowledged write in synchronous mode (the 10,000-seed sweep found
// these 14), each with raft's randomness pinned to a value under which the
// run failed before the fix (the sweep itself ran unpinned). Two causes:
//
//   - timeline: PostgreSQL numbers timelines locally, so a divergent WAL
//     (an old primary that promoted again on its own branch, or came back
//     without a successful rewind) ended on the same or a higher timeline
//     number than the WAL holding the acknowledged commits, with a longer
//     LSN, and (timeline, LSN) put it above the synchronous bar. Fixed by
//     ordering positions by (writer token, LSN).
//   - unknown: a daemon restarted a moment before the position request
//     answered with a zero position, which counted as one of the n-k+1
//     reports the bar needs although that node was the only one holding
//     the newest acknowledged commit. Fixed by not counting unknown
//     positions.
func TestAckedWriteLostRegressions(t *testing.T) {
	for _, tc := range []struct {
		seed, pin uint64
		cause     string
	}{
		{517, 1, "timeline"}, {862, 1, "timeline"}, {1148, 18, "timeline"}, {2249, 1, "timeline"},
		{2307, 2, "unknown"}, {2421, 1, "timeline"}, {4749, 7, "unknown"}, {4977, 4, "unknown"},
		{5534, 1, "timeline"}, {5975, 9, "unknown"}, {6845, 10, "timeline"}, {7315, 3, "timeline"},
		{7323, 1, "timeline"}, {9433, 3, "unknown"},
	} {
		t.Run(fmt.Sprintf("seed%d-%s", tc.seed, tc.cause), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, tc.pin)
			r := Run(Config{Nodes: 5, Sync: true, Seed: tc.seed})
			if r.Violation != nil {
				printFirst(t, []Result{r})
				t.Fatal(r.Violation)
			}
			if r.Acked == 0 || r.Failovers == 0 {
				t.Fatalf("%d writes acknowledged, %d failovers: the run no longer exercises a failover with sync commits", r.Acked, r.Failovers)
			}
		})
	}
}

// TestBuggyStorageCaught: a disk that forgets the last vote and the last
// revocation on a crash must be caught. The same seeds with a correct
// disk must be clean, so it is the disk the simulator catches.
func TestBuggyStorageCaught(t *testing.T) {
	cfg := Config{Nodes: 3, Duration: 45 * time.Second, LivenessBound: 20 * time.Second, Faults: FaultKinds{Crashes: true, Partitions: true}}
	good := pinnedRunMany(t, cfg, 100, nil)
	if len(good.Violations) > 0 {
		printFirst(t, good.Violations)
		t.Fatalf("correct storage: %d violations", len(good.Violations))
	}
	cfg.BuggyStorage = true
	bad := pinnedRunMany(t, cfg, 300, nil)
	report(t, bad)
	if len(bad.Violations) == 0 {
		t.Fatal("buggy storage: no violation in 300 seeds; the simulator stopped catching lost revocations")
	}
	printFirst(t, bad.Violations)
}

// TestUnsafeLeaseCaught: a lease whose drift margin does not cover the
// clocks' real drift (the config claims MaxDrift 0.1%, the clocks drift
// 8%: the TTL is too short for its margin) must be caught, and the same
// schedule with a margin that covers the drift must be clean.
func TestUnsafeLeaseCaught(t *testing.T) {
	sch, err := ParseSchedule(`
		at 0s drift 1 0.92   # the primary's clock runs slow: its lease lasts longer in real time
		at 0s drift 2 1.08   # the voters' clocks run fast: their grants end sooner
		at 0s drift 3 1.08
		at 0s drift 4 1.08
		at 0s drift 5 1.08
		at 10s isolate 1
		at 25s heal`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		maxDrift float64
		caught   bool
	}{{0.001, true}, {0.1, false}} {
		lc := election.LeaseConfig{TTL: 8 * time.Second, RenewInterval: 2 * time.Second, MaxDrift: tc.maxDrift, Safety: time.Millisecond}
		cfg := Config{Nodes: 5, Duration: 40 * time.Second, LivenessBound: 10 * time.Second, Schedule: sch, Drift: 0.08, LeaseOverride: &lc}
		s := pinnedRunMany(t, cfg, 10, nil)
		switch {
		case tc.caught && len(s.Violations) == 0:
			t.Fatalf("MaxDrift %v under 8%% real drift: no violation in 10 seeds", tc.maxDrift)
		case tc.caught:
			for _, r := range s.Violations {
				if v := r.Violation.Invariant; v != InvStaleLease && v != InvTwoWriters {
					t.Fatalf("unexpected violation %s", r.Violation)
				}
			}
			printFirst(t, s.Violations)
		case len(s.Violations) > 0:
			printFirst(t, s.Violations)
			t.Fatalf("MaxDrift %v covers the drift, yet %d violations", tc.maxDrift, len(s.Violations))
		}
	}
}

// TestScenarioFiles runs testdata/*.txt, each under 5 seeds.
func TestScenarioFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) < 5 {
		t.Fatalf("only %d scenario files", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sf, err := ParseScenarioFile(string(b))
			if err != nil {
				t.Fatal(err)
			}
			cryptotest.SetGlobalRandom(t, 1)
			for seed := uint64(1); seed <= 5; seed++ {
				cfg := sf.Config
				cfg.Seed = seed
				r := Run(cfg)
				if bad := sf.Check(r); len(bad) > 0 {
					printFirst(t, []Result{r})
					t.Fatalf("seed %d: %s", seed, strings.Join(bad, "; "))
				}
			}
		})
	}
}

// TestBuiltinScenarios: every named scenario runs clean for a few seeds.
func TestBuiltinScenarios(t *testing.T) {
	for _, sc := range Scenarios {
		cfg := testCfg()
		cfg.Scenario, cfg.Duration = sc, 60*time.Second
		s := pinnedRunMany(t, cfg, 4, nil)
		if len(s.Violations) > 0 {
			printFirst(t, s.Violations)
			t.Fatalf("%s: %d violations", sc, len(s.Violations))
		}
	}
}

// TestDeterministicReplay: with raft's randomness pinned (crypto/rand made
// deterministic by cryptotest.SetGlobalRandom, which is where raft draws
// its election jitter), a seed replays bit for bit, and so does its
// recorded schedule.
func TestDeterministicReplay(t *testing.T) {
	cfg := testCfg()
	cfg.Seed = 7
	run := func(c Config) Result {
		cryptotest.SetGlobalRandom(t, 99)
		return Run(c)
	}
	a, b := run(cfg), run(cfg)
	if !slices.Equal(a.Trace, b.Trace) {
		t.Fatal("same seed, same raft randomness: traces differ")
	}
	sched, err := ParseSchedule(FormatSchedule(a.Schedule))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sched, a.Schedule) {
		t.Fatalf("schedule does not round-trip:\n%s", FormatSchedule(a.Schedule))
	}
	cfg.Schedule = sched
	c := run(cfg)
	if !slices.Equal(a.Trace, c.Trace) {
		t.Fatal("replaying the recorded schedule gives a different trace")
	}
}

// TestNodeCounts: 3 to 9 nodes (beyond five the rest join as learners).
func TestNodeCounts(t *testing.T) {
	for n := 3; n <= 9; n += 2 {
		cfg := testCfg()
		cfg.Nodes = n
		s := pinnedRunMany(t, cfg, 6, nil)
		if len(s.Violations) > 0 {
			printFirst(t, s.Violations)
			t.Fatalf("%d nodes: %d violations", n, len(s.Violations))
		}
	}
	if r := Run(Config{Nodes: 2}); r.Violation == nil || r.Violation.Invariant != "config" {
		t.Fatal("2 nodes accepted")
	}
}

// TestFigures prints the distribution figures for SIM_FIGURES seeds of
// the default random scenario (70s runs); skipped unless set.
func TestFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIM_FIGURES"))
	if n == 0 {
		t.Skip("set SIM_FIGURES=<seeds> to print figures")
	}
	for _, sync := range []bool{false, true} {
		s := pinnedRunMany(t, Config{Nodes: 5, Sync: sync}, n, nil)
		report(t, s)
	}
}

// TestLivenessWithoutStuckRelease: a failover abandoned after its revoke
// quorum (raft leadership moved) used to leave a healthy-looking primary
// that could never hold a lease again, with nobody restarting the
// failover; only the glue's releaseIfStuck rescued it. Election now
// resumes it itself (the old primary releases a token a quorum refused as
// revoked; a leader that revoked the applied token resumes the failover),
// so the runs are clean with the glue rule off — the default, which every
// random test uses too. The same seeds with the rule on must stay clean
// (it remains the daemon's safety net).
func TestLivenessWithoutStuckRelease(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	for _, stuck := range []bool{false, true} {
		cfg := Config{Nodes: 5, StuckRelease: stuck}
		s := pinnedRunMany(t, cfg, seeds, nil)
		if len(s.Violations) > 0 {
			printFirst(t, s.Violations)
			t.Fatalf("StuckRelease=%v: %d of %d runs violated an invariant", stuck, len(s.Violations), seeds)
		}
	}
}

// TestAbandonedFailoverResumed replays the shape of the liveness bug: the
// primary is frozen long enough for the detector to fire and a quorum to
// revoke its token, then the coordinator is frozen (raft leadership
// moves) while the old primary comes back healthy. Without the glue rule
// the cluster must still get a writable primary under a newer token.
func TestAbandonedFailoverResumed(t *testing.T) {
	sch, err := ParseSchedule(`
		at 8s pause 1 4s        # primary 1 frozen: detector fires, revoke quorum
		at 10.5s pause leader 6s # the coordinator stalls mid-failover
		at 30s heal`)
	if err != nil {
		t.Fatal(err)
	}
	// Pinned raft randomness: which node leads, and so whether the
	// coordinator's stall lands mid-failover, must not vary between runs.
	cryptotest.SetGlobalRandom(t, 1)
	resumed := 0
	for seed := uint64(1); seed <= 10; seed++ {
		r := Run(Config{Nodes: 5, Seed: seed, Schedule: sch, Duration: 45 * time.Second, LivenessBound: 15 * time.Second})
		if r.Violation != nil {
			printFirst(t, []Result{r})
			t.Fatalf("seed %d: %v", seed, r.Violation)
		}
		if r.Failovers == 0 {
			printFirst(t, []Result{r})
			t.Fatalf("seed %d: no failover", seed)
		}
		for _, e := range r.Trace {
			if strings.Contains(e.Text, "revoked by a quorum of voters") || strings.Contains(e.Text, "resuming:") {
				resumed++
				break
			}
		}
	}
	t.Logf("%d of 10 runs resumed an abandoned failover", resumed)
}

func TestRingIsMajority(t *testing.T) {
	for n := 3; n <= 9; n++ {
		s, err := newSim(Config{Nodes: n, Schedule: []Step{}, Duration: time.Second, LivenessBound: time.Second, FaultStart: time.Second, NumSync: 1})
		if err != nil {
			t.Fatal(err)
		}
		s.apply(Step{Op: "ring"})
		for _, a := range s.ids {
			reach := 0
			for _, b := range s.ids {
				if s.net.connected(a, b) && s.net.connected(b, a) {
					reach++
				}
			}
			if reach < n/2+1 {
				t.Fatalf("%d nodes: n%d reaches %d, not a majority", n, a, reach)
			}
			if n >= 5 && reach == n {
				t.Fatalf("%d nodes: n%d reaches everyone", n, a)
			}
		}
	}
}

// pinnedRunMany runs seeds one after the other with raft's randomness
// pinned (cryptotest.SetGlobalRandom: raft draws its election jitter from
// crypto/rand), so a test's outcome depends on its seeds alone and CI
// cannot go red by chance. The CLI and `make sim` run unpinned, in
// parallel, and so explore more schedules.
func pinnedRunMany(t *testing.T, cfg Config, seeds int, progress func(int)) Summary {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 1)
	return RunManyWorkers(cfg, seeds, 1, progress)
}
