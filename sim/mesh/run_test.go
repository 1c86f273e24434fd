package mesh

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestRun100NodesWithLoss is the CI run: 100 real memberlists, 5% packet
// loss, two paused nodes. It asserts outcomes, not timings (the machine
// is shared); the timings are logged.
func TestRun100NodesWithLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a 100-node run takes about 45 s")
	}
	// A generous bound that only catches a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Run(ctx, Config{Nodes: 100, Loss: 0.05, Seed: 7, Pause: 2, Stable: time.Second,
		Progress: &progress, ProgressEvery: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	WriteTable(&table, res)
	t.Logf("\n%s", table.String())
	if !res.Crash.Complete {
		t.Errorf("crash of %s seen by %d of %d nodes", res.Crash.Subject, res.Crash.Reached, res.Crash.Of)
	}
	if !res.Broadcast.Complete {
		t.Errorf("state broadcast reached %d of %d nodes", res.Broadcast.Reached, res.Broadcast.Of)
	}
	if !res.Metadata.Complete {
		t.Errorf("metadata update reached %d of %d nodes", res.Metadata.Reached, res.Metadata.Of)
	}
	if len(res.FalseDead) > 0 {
		t.Errorf("healthy nodes declared dead under 5%% loss: %s", verdictText(res.FalseDead))
	}
	if p := res.Partition; p == nil || !p.Remerged {
		t.Errorf("halves did not re-merge after the heal: %+v", p)
	}
	if res.Net.LostRandom == 0 || res.Net.LostPartition == 0 || res.Net.DialsTimedOut == 0 {
		t.Errorf("faults not exercised: %+v", res.Net)
	}
	if !res.Pass {
		t.Error("run did not pass")
	}
	if res.Pause == nil || len(res.Pause.Nodes) != 2 {
		t.Errorf("pause phase missing: %+v", res.Pause)
	}
	if !strings.Contains(progress.String(), "mesh sim") {
		t.Error("no progress lines in a run longer than the progress interval")
	}
}

func TestCommandUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "2"}, "--nodes"},
		{[]string{"--loss", "1.5"}, "--loss"},
		{[]string{"--loss", "-0.1"}, "--loss"},
		{[]string{"--nodes", "100", "--pause", "30"}, "--pause"},
		{[]string{"--pause-for", "-1s"}, "--pause-for"},
		{[]string{"--delay", "5s"}, "--delay"},
		{[]string{"--retransmit-mult", "20"}, "--retransmit-mult"},
		{[]string{"--partition", "--no-partition"}, "contradict"},
		{[]string{"--preset", "huge"}, "--preset"},
		{[]string{"--nodes", "10", "--wave", "11"}, "--wave"},
		{[]string{"--wave", "-2"}, "--wave"},
		{[]string{"--nodes", "10", "--waves", "11"}, "--waves"},
		{[]string{"--wave", "10", "--waves", "3"}, "exclude"},
		{[]string{"--sync", "--no-sync"}, "exclude"},
		{[]string{"--scale", "-1"}, "--scale"},
		{[]string{"--scale", "101"}, "--scale"},
		{[]string{"--gc", "never"}, "--gc"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		var out, errOut bytes.Buffer
		code := Command(tc.args, &out, &errOut)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, ExitUsage)
		}
		if !strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "usage:") {
			t.Errorf("%v: stderr %q does not name %q", tc.args, errOut.String(), tc.want)
		}
	}
	var out bytes.Buffer
	if code := Command([]string{"--help"}, &out, &out); code != ExitOK || !strings.Contains(out.String(), "-loss") {
		t.Errorf("--help: exit %d, %q", code, out.String())
	}
}

func TestTimingsScale(t *testing.T) {
	small, big := TimingsFor(10), TimingsFor(1000)
	if small.Scale != 1 || small.ProbeInterval != 250*time.Millisecond {
		t.Errorf("10 nodes: %+v, want the daemon's defaults", small)
	}
	if big.Scale != 4 || big.ProbeInterval != time.Second || big.ProbeTimeout != 800*time.Millisecond {
		t.Errorf("1000 nodes: %+v", big)
	}
	lo, hi := big.SuspicionTimeout(1000)
	if lo != 12*time.Second || hi != 24*time.Second {
		t.Errorf("suspicion at 1000 nodes: %v-%v, want 12s-24s", lo, hi)
	}
}

func TestPresets(t *testing.T) {
	// auto keeps the daemon preset for the CI size and switches at
	// LargeFrom.
	if got := TimingsFor(100); got.Preset != PresetDaemon || got.RetransmitMult != 4 || got.PushPullInterval != 5*time.Second {
		t.Errorf("100 nodes: %+v, want the daemon preset", got)
	}
	if got := TimingsFor(LargeFrom - 1); got.Preset != PresetDaemon {
		t.Errorf("%d nodes: preset %q", LargeFrom-1, got.Preset)
	}
	daemon, err := PresetTimings(PresetDaemon, 1000)
	if err != nil {
		t.Fatal(err)
	}
	large := TimingsFor(1000)
	if large.Preset != PresetLarge || large.RetransmitMult != largeMult || large.StateRetransmitMult != 4 {
		t.Errorf("1000 nodes: %+v", large)
	}
	// The large preset changes only what it documents.
	want := daemon
	want.Preset, want.RetransmitMult, want.TCPTimeout = PresetLarge, largeMult, 12*time.Second
	if large != want {
		t.Errorf("large preset differs from the daemon preset in more than documented:\n%+v\n%+v", large, want)
	}
	for _, p := range []string{PresetAuto, PresetDaemon, PresetLarge} {
		tm, err := PresetTimings(p, 1000)
		if err != nil || tm.Validate() != nil {
			t.Errorf("preset %s: %v / %v", p, err, tm.Validate())
		}
	}
	if _, err := PresetTimings("huge", 1000); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestTimingsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Timings)
		want string
	}{
		{"timeout not below interval", func(tm *Timings) { tm.ProbeTimeout = tm.ProbeInterval }, "probe timeout"},
		{"zero gossip interval", func(tm *Timings) { tm.GossipInterval = 0 }, "positive"},
		{"no gossip nodes", func(tm *Timings) { tm.GossipNodes = 0 }, "gossip nodes"},
		{"zero retransmit mult", func(tm *Timings) { tm.RetransmitMult = 0 }, "retransmit"},
		{"huge state mult", func(tm *Timings) { tm.StateRetransmitMult = 11 }, "retransmit"},
		{"zero suspicion mult", func(tm *Timings) { tm.SuspicionMult = 0 }, "suspicion"},
	} {
		tm := TimingsFor(100)
		tc.mod(&tm)
		err := tm.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		// Run refuses such settings before building anything.
		if _, err := Run(context.Background(), Config{Nodes: 10, Timings: &tm}); err == nil {
			t.Errorf("%s: Run accepted the settings", tc.name)
		}
	}
}

// TestRunWavesSync forms a mesh the way the large preset does (equal-cost
// waves, each ended by an anti-entropy round) at a size CI affords, with
// the large preset's settings, and checks that the rounds ran and the
// run's measurements completed with no healthy node declared dead.
func TestRunWavesSync(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60-node run takes about 20 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tm, err := PresetTimings(PresetLarge, 60)
	if err != nil {
		t.Fatal(err)
	}
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	res, err := Run(ctx, Config{Nodes: 60, Loss: 0.05, Seed: 3, Waves: 3, Sync: true, NoPartition: true,
		Stable: time.Second, Timings: &tm, GC: GCQuiet})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	WriteTable(&table, res)
	t.Logf("\n%s", table.String())
	if res.FormationWaves != 3 {
		t.Errorf("formed in %d waves, want 3", res.FormationWaves)
	}
	if res.FormationSyncs == 0 {
		t.Error("no anti-entropy push/pull during the formation")
	}
	// GCQuiet collects before waves 2 and 3 and before the measurements,
	// and gives the process its collector back.
	if res.Collections != 3 {
		t.Errorf("%d collections at quiet points, want 3", res.Collections)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent after the run is %d, want 100 (restored)", got)
	}
	if len(res.FalseDead) > 0 {
		t.Errorf("healthy nodes declared dead under 5%% loss: %s", verdictText(res.FalseDead))
	}
	if !res.Pass {
		t.Error("run did not pass")
	}
}

// TestWavesEqualCost checks the equal-cost schedule: every joining node
// in exactly one wave, in order, the waves shrinking as the cluster
// grows, and a wave's cost (size times the members it joins) about the
// same for every wave.
func TestWavesEqualCost(t *testing.T) {
	for _, tc := range []struct{ nodes, seeds, waves int }{
		{1000, 5, 6}, {1000, 5, 1}, {100, 5, 8}, {10, 5, 10}, {300, 5, 3},
	} {
		r := &runner{cfg: Config{Nodes: tc.nodes, Waves: tc.waves}}
		for k := range tc.seeds {
			r.seeds = append(r.seeds, k)
		}
		others := make([]*node, tc.nodes-tc.seeds)
		for i := range others {
			others[i] = &node{idx: tc.seeds + i}
		}
		batches := r.waves(others)
		if len(batches) > tc.waves || len(batches) == 0 {
			t.Fatalf("%+v: %d waves", tc, len(batches))
		}
		next := tc.seeds
		members := tc.seeds
		var costs []float64
		for k, b := range batches {
			if len(b) == 0 {
				t.Fatalf("%+v: wave %d is empty", tc, k)
			}
			for _, nd := range b {
				if nd.idx != next {
					t.Fatalf("%+v: wave %d has node %d, want %d", tc, k, nd.idx, next)
				}
				next++
			}
			if k > 0 && len(b) > len(batches[k-1]) && k < len(batches)-1 {
				t.Errorf("%+v: wave %d (%d nodes) larger than wave %d (%d)", tc, k, len(b), k-1, len(batches[k-1]))
			}
			costs = append(costs, float64(len(b))*float64(2*members+len(b)))
			members += len(b)
		}
		if next != tc.nodes {
			t.Fatalf("%+v: waves cover nodes up to %d, want %d", tc, next, tc.nodes)
		}
		if tc.nodes >= 300 && len(costs) > 1 {
			lo, hi := costs[0], costs[0]
			for _, c := range costs {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi > 2*lo {
				t.Errorf("%+v: wave costs %v differ by more than 2x", tc, costs)
			}
		}
	}
}

// TestPhaseSpread checks the span over which the nodes are created: a
// common multiple of the probe and gossip intervals, so both phases are
// spread evenly, and no more than four probe intervals.
func TestPhaseSpread(t *testing.T) {
	for _, tc := range []struct {
		probe, gossip, want time.Duration
	}{
		{time.Second, 400 * time.Millisecond, 2 * time.Second},
		{500 * time.Millisecond, 200 * time.Millisecond, time.Second},
		{time.Second, time.Second, time.Second},
		{time.Second, 300 * time.Millisecond, 3 * time.Second},
		{time.Second, 999 * time.Millisecond, time.Second}, // lcm too long
	} {
		got := phaseSpread(Timings{ProbeInterval: tc.probe, GossipInterval: tc.gossip})
		if got != tc.want {
			t.Errorf("phaseSpread(probe %v, gossip %v) = %v, want %v", tc.probe, tc.gossip, got, tc.want)
		}
	}
	for _, n := range []int{10, 100, 1000} {
		tm := TimingsFor(n)
		sp := phaseSpread(tm)
		if sp%tm.ProbeInterval != 0 || sp%tm.GossipInterval != 0 {
			t.Errorf("%d nodes: spread %v is not a multiple of probe %v and gossip %v", n, sp, tm.ProbeInterval, tm.GossipInterval)
		}
	}
}

// TestMovingMean checks the window settle and the wave gate average over.
func TestMovingMean(t *testing.T) {
	m := newMovingMean(3)
	for i, tc := range []struct {
		x, mean float64
		full    bool
	}{{3, 3, false}, {6, 4.5, false}, {0, 3, true}, {9, 5, true}, {9, 6, true}} {
		mean, full := m.add(tc.x)
		if mean != tc.mean || full != tc.full {
			t.Errorf("sample %d (%v): mean %v full %v, want %v %v", i, tc.x, mean, full, tc.mean, tc.full)
		}
	}
}
