package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config describes one simulator run.
type Config struct {
	Nodes int     // 10 to 1,000 is the supported range; >= 4 is required
	Loss  float64 // packet loss on every link after formation, 0 to <1
	// Delay and Jitter: every packet waits Delay plus up to Jitter.
	Delay, Jitter time.Duration
	Seed          uint64 // picks the crashed, paused and broadcasting nodes
	// Pause nodes are paused at once for PauseFor (0: half the minimum
	// suspicion timeout, so a healthy mesh should not declare them dead).
	Pause    int
	PauseFor time.Duration
	// Stable is the quiet window after the crash, with packet loss only,
	// in which false verdicts are watched (they are watched in every
	// phase; 0: 5 s).
	Stable time.Duration
	// NoPartition skips the partition and re-merge phase.
	NoPartition bool
	// NoFilter turns off the duplicate-alive filter (filter.go), to
	// compare runs with and without it.
	NoFilter bool
	Timings  *Timings // nil: TimingsFor(Nodes)
	Seeds    int      // seed nodes every node (re)joins; 0: min(5, Nodes)
	// Wave is how many nodes join at a time while the cluster forms: a
	// wave joins once every member sees every member of the waves before
	// it (0: all nodes at once). Joining in waves keeps the gossip of the
	// joins (every node re-sends every node it learns) from arriving as
	// one burst that starves the acks.
	Wave int
	// Waves, when above 0, replaces Wave: the nodes join in that many
	// waves of equal cost. A wave of m nodes joining c members costs
	// about m·(2c+m) alive messages (each joiner learns the c members and
	// the other joiners, each member learns the m joiners, and every node
	// re-sends what it learns), so the waves shrink as the cluster grows:
	// the k-th of W brings the cluster to n·sqrt(k/W) nodes.
	Waves int
	// Sync ends each wave with an anti-entropy round (syncAll): once
	// half the members see every member, each member that does not
	// push/pulls with one that does and receives the full member list in
	// one stream, instead of waiting for memberlist's own push/pull to
	// bring the alive messages gossip missed.
	Sync bool
	// GC is the garbage-collector policy for the run: GCPercent (or "",
	// the pacer) or GCQuiet (collections only at the run's quiet points;
	// see GCQuiet). It is process-wide: Run restores the settings after.
	GC string
	// Progress receives a status line every ProgressEvery (0: 5 s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// LogOutput receives every node's memberlist log (nil: discarded).
	LogOutput io.Writer
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Nodes < 4:
		return fmt.Errorf("nodes must be at least 4, got %d", c.Nodes)
	case c.Nodes > 100000:
		return fmt.Errorf("nodes must be at most 100000, got %d", c.Nodes)
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("loss must be in [0, 1), got %v", c.Loss)
	case c.Delay < 0 || c.Jitter < 0:
		return errors.New("delay and jitter must not be negative")
	case c.Pause < 0:
		return fmt.Errorf("pause must not be negative, got %d", c.Pause)
	case c.Pause > c.Nodes/4:
		return fmt.Errorf("pause must be at most a quarter of the nodes (%d), got %d", c.Nodes/4, c.Pause)
	case c.PauseFor < 0 || c.Stable < 0:
		return errors.New("durations must not be negative")
	case c.Seeds < 0 || c.Seeds > c.Nodes:
		return fmt.Errorf("seeds must be in [0, nodes], got %d", c.Seeds)
	case c.Wave < 0:
		return fmt.Errorf("wave must not be negative, got %d", c.Wave)
	case c.Waves < 0 || c.Waves > c.Nodes:
		return fmt.Errorf("waves must be in [0, nodes], got %d", c.Waves)
	case c.GC != "" && c.GC != GCPercent && c.GC != GCQuiet:
		return fmt.Errorf("gc must be %s or %s, got %q", GCPercent, GCQuiet, c.GC)
	}
	if c.Timings != nil {
		return c.Timings.Validate()
	}
	return nil
}

// runner is the state of one Run.
type runner struct {
	cfg   Config
	t     Timings
	netw  *Network
	rec   *recorder
	nodes []*node
	rng   *rand.Rand
	seeds []int
	gc    collector

	status atomic.Pointer[func() string]
}

// Run builds a cluster of cfg.Nodes real memberlists on a simulated
// network and measures, in order: a state broadcast and a metadata change
// reaching every node, the detection of a crashed node, a quiet window
// (with paused nodes if asked), and a partition into halves that is
// healed. Dead verdicts about healthy nodes are collected throughout.
// The run uses the wall clock; it takes tens of seconds at 1,000 nodes.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began, cpu0 := time.Now(), processCPU()
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	if cfg.Timings != nil {
		r.t = *cfg.Timings
	} else {
		r.t = TimingsFor(cfg.Nodes)
	}
	if r.cfg.Seeds == 0 {
		r.cfg.Seeds = min(5, cfg.Nodes)
	}
	lower, upper := r.t.SuspicionTimeout(cfg.Nodes)
	if r.cfg.PauseFor == 0 {
		r.cfg.PauseFor = lower / 2
	}
	if r.cfg.Stable == 0 {
		r.cfg.Stable = 5 * time.Second
	}
	res := &Result{Nodes: cfg.Nodes, Loss: cfg.Loss, Seed: cfg.Seed, Timings: r.t, Filter: !cfg.NoFilter}
	r.netw = NewNetwork(Link{Delay: cfg.Delay, Jitter: cfg.Jitter}, cfg.Seed, cfg.Nodes)
	if !cfg.NoFilter {
		r.netw.EnableAliveFilter()
	}
	r.rec = newRecorder(cfg.Nodes)

	defer r.gc.start(cfg.GC)()
	stopProgress := r.startProgress(began)
	defer stopProgress()
	defer r.shutdown()

	// Formation.
	if err := r.form(ctx, res); err != nil {
		return nil, err
	}
	res.Formation = Seconds(time.Since(began))
	res.FormationSettled = r.settle(ctx)
	if r.gc.quietPoint() {
		// The collection itself used the cores; the measurements start
		// once the process is quiet again.
		r.waitCPUBelow(ctx, waveCPU, 10*time.Second)
	}
	res.FormationVerdicts = r.rec.observations(catFormation)
	_, res.FormationSuspected = r.netw.TakeSuspicions()
	measured, cpuMeasured := time.Now(), processCPU()
	res.FormationCPU = Seconds(cpuMeasured - cpu0)
	r.netw.SetDefaultLink(Link{Delay: cfg.Delay, Jitter: cfg.Jitter, Loss: cfg.Loss})
	r.rec.measuring.Store(true)

	spreadTimeout := 20*r.t.GossipInterval*time.Duration(r.t.Scale+1) + 10*time.Second

	// A crash (kill -9: no leave). It is measured first: its suspect and
	// dead messages go ahead of whatever memberlist still has queued,
	// while the state broadcast below only gets the room memberlist's own
	// queue leaves in a packet (settle).
	r.rec.setPhase("crash")
	victim := r.pickNonSeed(nil)
	r.rec.crashSubj.Store(int32(victim.idx))
	t0 := time.Now()
	victim.crash(r.netw)
	res.Crash = r.spread(ctx, "crash", victim, t0, r.rec.crashSeen, 3*upper+spreadTimeout)

	// The quiet window: packet loss only.
	r.rec.setPhase("stable")
	r.setStatus(func() string { return fmt.Sprintf("stable window (%v)", r.cfg.Stable) })
	if err := sleepCtx(ctx, r.cfg.Stable); err != nil {
		return nil, err
	}

	live := r.liveNodes()
	// A state broadcast (the daemon's SetLocal).
	r.rec.setPhase("broadcast")
	origin := live[r.rng.IntN(len(live))]
	t0 = time.Now()
	r.rec.stateSubj.Store(int32(origin.idx))
	r.rec.stateWant.Store(origin.version.Load() + 1)
	origin.broadcastState()
	res.Broadcast = r.spread(ctx, "broadcast", origin, t0, r.rec.stateSeen, spreadTimeout)

	// A metadata change (UpdateNode).
	r.rec.setPhase("metadata")
	origin = live[r.rng.IntN(len(live))]
	meta := []byte("v=" + strconv.FormatUint(r.rng.Uint64(), 36))
	r.rec.metaSubj.Store(int32(origin.idx))
	r.rec.metaWant.Store(&meta)
	t0 = time.Now()
	go func(nd *node) { _ = nd.setMeta(meta) }(origin)
	res.Metadata = r.spread(ctx, "metadata", origin, t0, r.rec.metaSeen, spreadTimeout)

	// Paused nodes (CPU pauses), on top of the loss.
	if cfg.Pause > 0 {
		r.rec.setPhase("pause")
		pr := &PauseResult{For: Seconds(r.cfg.PauseFor)}
		chosen := map[int]bool{victim.idx: true}
		for range cfg.Pause {
			nd := r.pickNonSeed(chosen)
			chosen[nd.idx] = true
			pr.Nodes = append(pr.Nodes, nd.name)
			r.rec.pausedEver[nd.idx].Store(true)
		}
		r.rec.pausing.Store(true)
		for _, name := range pr.Nodes {
			_ = r.netw.Pause(name, r.cfg.PauseFor)
		}
		// A paused node is probed within a few intervals; its suspicion
		// lasts at most upper; then the verdict has to spread.
		window := r.cfg.PauseFor + 4*r.t.ProbeInterval + upper + 2*time.Second
		r.setStatus(func() string { return fmt.Sprintf("pause window (%v)", window) })
		if err := sleepCtx(ctx, window); err != nil {
			return nil, err
		}
		r.rec.pausing.Store(false)
		for _, v := range r.rec.verdictList(catPaused) {
			pr.DeclaredDead = append(pr.DeclaredDead, v.Subject)
		}
		pr.HealthyDeclaredByPaused = r.rec.verdictList(catByPaused)
		pr.HealthyDeclaredDead = r.rec.verdictList(catDuringPause)
		res.Pause = pr
	}

	if !cfg.NoPartition {
		pr, err := r.partition(ctx, upper)
		if err != nil {
			return nil, err
		}
		res.Partition = pr
	}

	res.FalseDead = r.rec.verdictList(catFalse)
	_, res.Suspected = r.netw.TakeSuspicions()
	res.Net = r.netw.Stats()
	res.Wall = Seconds(time.Since(began))
	res.CPU = Seconds(processCPU() - cpu0)
	res.MeasureWall = Seconds(time.Since(measured))
	res.MeasureCPU = Seconds(processCPU() - cpuMeasured)
	res.PeakRSSMB = peakRSSMB()
	res.GC, res.Collections, res.CollectWall = cfg.GC, r.gc.count, Seconds(r.gc.took)
	res.Pass = len(res.FalseDead) == 0 && res.Crash.Complete && res.Broadcast.Complete &&
		res.Metadata.Complete && (res.Partition == nil || res.Partition.Remerged)
	return res, nil
}

// form creates the nodes and joins them: the seeds join each other, then
// the other nodes join a seed (a few joins at a time), in waves (Wave,
// Waves), each wave ended by an anti-entropy round when Config.Sync is
// set; the run waits until every node sees every node alive.
func (r *runner) form(ctx context.Context, res *Result) error {
	n := r.cfg.Nodes
	r.rec.setPhase("formation")
	for k := range r.cfg.Seeds {
		r.seeds = append(r.seeds, k*n/r.cfg.Seeds)
	}
	var created atomic.Int32
	r.setStatus(func() string { return fmt.Sprintf("formation: %d/%d nodes created", created.Load(), n) })
	r.nodes = make([]*node, n)
	// memberlist starts a node's probe and gossip tickers when the node
	// is created, and their phase stays: nodes created in one burst probe
	// and gossip in the same few milliseconds of every interval, a load
	// spike (and ack delays) that daemons started at different times do
	// not have. Creating them evenly over phaseSpread spreads the phases.
	spread, t0 := phaseSpread(r.t), time.Now()
	for i := range n {
		if err := sleepCtx(ctx, time.Until(t0.Add(spread*time.Duration(i)/time.Duration(n)))); err != nil {
			return err
		}
		nd, err := newNode(i, r.netw, r.t, r.rec, r.seeds, r.cfg.LogOutput)
		if err != nil {
			return err
		}
		r.nodes[i] = nd
		created.Add(1)
	}
	addrOf := func(i int) string { return r.nodes[i].tr.Addr() }
	for _, nd := range r.nodes {
		nd.seedAddrs(addrOf)
	}
	first := r.nodes[r.seeds[0]]
	for _, s := range r.seeds[1:] {
		if _, err := r.nodes[s].ml.Join([]string{first.tr.Addr()}); err != nil {
			return fmt.Errorf("seed %s cannot join %s: %w", r.nodes[s].name, first.name, err)
		}
	}
	isSeed := make(map[int]bool)
	for _, s := range r.seeds {
		isSeed[s] = true
	}
	var joined, synced, joinRetries, members atomic.Int32
	members.Store(int32(len(r.seeds)))
	r.setStatus(func() string {
		m := int(members.Load())
		return fmt.Sprintf("formation: %d/%d non-seed nodes joined (%d synced, %d retried), %d see all %d members, views %s",
			joined.Load(), n-len(r.seeds), synced.Load(), joinRetries.Load(), r.countLive(m), m, r.viewSizes())
	})
	var others []*node
	for _, nd := range r.nodes {
		if !isSeed[nd.idx] {
			others = append(others, nd)
		}
	}
	inCluster := len(r.seeds)
	var joinErr atomic.Pointer[error]
	batches := r.waves(others)
	res.FormationWaves = len(batches)
	defer func() { res.FormationSyncs = int(synced.Load()) }()
	for k, batch := range batches {
		if ctx.Err() != nil {
			break
		}
		if k > 0 {
			// The previous wave's gossip has to drain first: a wave
			// started on a saturated process delays acks into false
			// suspicions.
			r.waitCPUBelow(ctx, waveCPU, waveTimeout)
			r.gc.quietPoint()
		}
		r.joinAll(ctx, batch, &joined, &joinRetries, &joinErr)
		if e := joinErr.Load(); e != nil {
			return *e
		}
		inCluster += len(batch)
		members.Store(int32(inCluster))
		last := k == len(batches)-1
		switch {
		case r.cfg.Sync:
			// Gossip spreads the wave until half the members see every
			// member or it stops making progress; then an anti-entropy
			// round completes every view.
			if err := r.waitGossip(ctx, inCluster); err != nil {
				return err
			}
			if err := r.syncAll(ctx, inCluster, &synced, &joinRetries); err != nil {
				return err
			}
		case !last:
			// The next wave joins once this one is absorbed: every
			// member sees every member (or the wave's time is up; the
			// final wait below catches a formation that never settles;
			// the loop checks ctx).
			_, _, _ = r.waitUntil(ctx, waveTimeout, func() bool { return r.countLive(inCluster) == inCluster })
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	members.Store(int32(n))
	for _, nd := range r.nodes {
		go nd.rejoinLoop(r.t.RejoinInterval)
	}
	_, ok, err := r.waitUntil(ctx, 60*time.Second+time.Duration(n)*60*time.Millisecond,
		func() bool { return r.countLive(n) == n })
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("formation: only %d of %d nodes saw every node alive", r.countLive(n), n)
	}
	return nil
}

// settle waits for the joins' gossip to drain: every learned node is
// re-broadcast by every node, so forming n nodes queues about n² alive
// messages, and memberlist sends them at a fixed rate (GossipNodes
// packets per GossipInterval), seconds after the last join. Until that
// backlog is sent, a node's gossip packets are full of it and carry
// nothing else: a state broadcast measured then waits for the backlog
// (17-27 s at 1,000 nodes), which says nothing about a running cluster.
// At 1,000 nodes the drain lasts about 40 s after the last join, so Run
// measures the crash first (its messages go ahead of the backlog) and
// the broadcast after the stable window. Settled means that over the
// last settleQuiet the packet rate averaged less than settleRate times
// the probing baseline (a ping and an ack per node per probe interval)
// and the process less than waveCPU of the cores: measuring on a
// process still saturated by the drain delays acks into suspicions that
// a real cluster, one daemon per machine, would not have.
func (r *runner) settle(ctx context.Context) bool {
	r.rec.setPhase("settle")
	n := float64(r.cfg.Nodes)
	baseline := 2 * n / r.t.ProbeInterval.Seconds()
	var rate, centiCores atomic.Int64
	r.setStatus(func() string {
		return fmt.Sprintf("settling: %d packets/s (baseline %.0f), %.2f cores", rate.Load(), baseline, float64(centiCores.Load())/100)
	})
	const step = 500 * time.Millisecond
	prev, meter := r.netw.Stats().Sent, newCPUMeter()
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*20*time.Millisecond)
	// The last settleQuiet of samples, averaged: a half-second sample of
	// the packet rate swings by half with the gossip rounds in it.
	rates, cpus := newMovingMean(int(settleQuiet/step)), newMovingMean(int(settleQuiet/step))
	for time.Now().Before(deadline) {
		if sleepCtx(ctx, step) != nil {
			return false
		}
		cur := r.netw.Stats().Sent
		avgRate, full := rates.add(float64(cur-prev) / step.Seconds())
		prev = cur
		avgCPU, _ := cpus.add(meter.cores())
		rate.Store(int64(avgRate))
		centiCores.Store(int64(avgCPU * 100))
		if full && avgRate < settleRate*baseline && avgCPU < waveCPU {
			return true
		}
	}
	return false
}

// movingMean is the mean of the last size samples.
type movingMean struct {
	size    int
	samples []float64
}

func newMovingMean(size int) *movingMean { return &movingMean{size: size} }

// add records x and returns the mean of the last size samples, and
// whether there have been size samples yet.
func (m *movingMean) add(x float64) (mean float64, full bool) {
	m.samples = append(m.samples, x)
	if len(m.samples) > m.size {
		m.samples = m.samples[1:]
	}
	sum := 0.0
	for _, v := range m.samples {
		sum += v
	}
	return sum / float64(len(m.samples)), len(m.samples) == m.size
}

// phaseSpread is the time over which form creates the nodes: the least
// common multiple of the probe and gossip intervals (whole milliseconds),
// so that every node's probe phase and gossip phase are both spread
// evenly, at most four probe intervals.
func phaseSpread(t Timings) time.Duration {
	a, b := t.ProbeInterval.Milliseconds(), t.GossipInterval.Milliseconds()
	if a <= 0 || b <= 0 {
		return t.ProbeInterval
	}
	g, h := a, b
	for h != 0 {
		g, h = h, g%h
	}
	l := time.Duration(a/g*b) * time.Millisecond
	if l > 4*t.ProbeInterval {
		return t.ProbeInterval
	}
	return l
}

// settleRate and settleQuiet: settle's bound on the packet rate, as a
// multiple of the probing baseline, and how long it has to hold.
const (
	settleRate  = 3
	settleQuiet = 2 * time.Second
)

// spread waits until every live node other than subject has a stamp in
// seen (set by the recorder) and returns the per-node delays.
func (r *runner) spread(ctx context.Context, what string, subject *node, t0 time.Time, seen []atomic.Int64, timeout time.Duration) Spread {
	want := 0
	for _, nd := range r.liveNodes() {
		if nd != subject {
			want++
		}
	}
	count := func() int {
		c := 0
		for _, nd := range r.liveNodes() {
			if nd != subject && seen[nd.idx].Load() != 0 {
				c++
			}
		}
		return c
	}
	r.setStatus(func() string { return fmt.Sprintf("%s of %s: %d/%d nodes", what, subject.name, count(), want) })
	_, _, _ = r.waitUntil(ctx, timeout, func() bool { return count() >= want })
	var per []time.Duration
	var missing []string
	for _, nd := range r.liveNodes() {
		if nd == subject {
			continue
		}
		if ts := seen[nd.idx].Load(); ts != 0 {
			per = append(per, max(0, time.Unix(0, ts).Sub(t0)))
		} else if len(missing) < maxMissing {
			missing = append(missing, nd.name)
		}
	}
	s := spreadOf(subject.name, per, want)
	if !s.Complete {
		s.Missing = missing
	}
	return s
}

// partition splits the live nodes into halves by index (the seeds are
// spread so both halves have some), waits until the halves have declared
// each other dead, heals, and waits for every node to see every live node
// alive again.
func (r *runner) partition(ctx context.Context, upper time.Duration) (*PartitionResult, error) {
	n := r.cfg.Nodes
	side := make([]int8, n)
	var groups [2][]string
	var liveOn [2]int
	for i, nd := range r.nodes {
		s := 0
		if i >= n/2 {
			s = 1
		}
		side[i] = int8(s)
		groups[s] = append(groups[s], nd.name)
		if !nd.stopped.Load() {
			liveOn[s]++
		}
	}
	pr := &PartitionResult{Sides: liveOn}
	r.rec.setPhase("partition")
	r.rec.partMu.Lock()
	r.rec.side = side
	r.rec.partMu.Unlock()
	t0 := time.Now()
	if err := r.netw.Partition(groups[0], groups[1]); err != nil {
		return nil, err
	}
	split := func() int {
		c := 0
		for _, nd := range r.liveNodes() {
			if int(nd.live.Load()) == liveOn[side[nd.idx]] {
				c++
			}
		}
		return c
	}
	total := liveOn[0] + liveOn[1]
	r.setStatus(func() string { return fmt.Sprintf("partition: %d/%d nodes see only their half", split(), total) })
	d, ok, err := r.waitUntil(ctx, 4*upper+30*time.Second, func() bool { return split() == total })
	if err != nil {
		return nil, err
	}
	pr.Split, pr.SplitComplete = Seconds(d), ok
	pr.Lasted = Seconds(time.Since(t0))

	r.rec.setPhase("heal")
	r.rec.partMu.Lock()
	r.rec.afterHeal = true
	r.rec.partMu.Unlock()
	t1 := time.Now()
	r.netw.Heal()
	merged := func() int {
		c := 0
		for _, nd := range r.liveNodes() {
			if int(nd.live.Load()) == total {
				c++
			}
		}
		return c
	}
	r.setStatus(func() string { return fmt.Sprintf("heal: %d/%d nodes see every live node", merged(), total) })
	d, ok, err = r.waitUntil(ctx, 3*r.t.RejoinInterval+4*upper+30*time.Second, func() bool { return merged() == total })
	if err != nil {
		return nil, err
	}
	pr.Remerge, pr.Remerged = Seconds(d), ok
	_ = t1
	pr.Verdicts = r.rec.observations(catPartition)
	return pr, nil
}

// waitUntil polls cond until it holds or timeout passes; it returns the
// time waited and whether cond held.
func (r *runner) waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) (time.Duration, bool, error) {
	t0 := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return time.Since(t0), true, nil
		}
		if time.Since(t0) > timeout {
			return time.Since(t0), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), false, ctx.Err()
		case <-tick.C:
		}
	}
}

func (r *runner) liveNodes() []*node {
	out := make([]*node, 0, len(r.nodes))
	for _, nd := range r.nodes {
		if nd != nil && !nd.stopped.Load() {
			out = append(out, nd)
		}
	}
	return out
}

// countLive counts the nodes that see exactly want members alive.
func (r *runner) countLive(want int) int {
	c := 0
	for _, nd := range r.nodes {
		if nd != nil && int(nd.live.Load()) == want {
			c++
		}
	}
	return c
}

// viewSizes summarises how many members the nodes see alive: min,
// median and max, for the progress line.
func (r *runner) viewSizes() string {
	var v []int
	for _, nd := range r.nodes {
		if nd != nil && !nd.stopped.Load() {
			v = append(v, int(nd.live.Load()))
		}
	}
	if len(v) == 0 {
		return "-"
	}
	sort.Ints(v)
	return fmt.Sprintf("min %d / median %d / max %d", v[0], v[len(v)/2], v[len(v)-1])
}

// pickNonSeed picks a random live node that is not a seed nor in skip.
func (r *runner) pickNonSeed(skip map[int]bool) *node {
	isSeed := make(map[int]bool)
	for _, s := range r.seeds {
		isSeed[s] = true
	}
	var cands []*node
	for _, nd := range r.liveNodes() {
		if !isSeed[nd.idx] && !skip[nd.idx] {
			cands = append(cands, nd)
		}
	}
	return cands[r.rng.IntN(len(cands))]
}

func (r *runner) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range r.nodes {
		if nd == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); nd.shutdown() }()
	}
	wg.Wait()
}

func (r *runner) setStatus(f func() string) { r.status.Store(&f) }

// startProgress prints the status every ProgressEvery until stopped.
func (r *runner) startProgress(began time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	every := r.cfg.ProgressEvery
	if every == 0 {
		every = 5 * time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		meter := newCPUMeter()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg := ""
				if f := r.status.Load(); f != nil {
					msg = (*f)()
				}
				fmt.Fprintf(r.cfg.Progress, "mesh sim %6.1fs  cpu %.2f  %s\n", time.Since(began).Seconds(), meter.cores(), msg)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// processCPU is the process's user plus system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMB reads the process's peak resident set (VmHWM) on Linux; 0
// elsewhere.
func peakRSSMB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// joinAll joins each node of batch to its seed, joinConcurrency at a
// time, and returns when all have joined or given up (joinErr set).
func (r *runner) joinAll(ctx context.Context, batch []*node, joined, retries *atomic.Int32, joinErr *atomic.Pointer[error]) {
	r.joinEach(ctx, batch, joinConcurrency, nil, func(nd *node) string { return r.nodes[r.seeds[nd.idx%len(r.seeds)]].tr.Addr() }, joined, retries, joinErr)
}

// joinEach joins each node of batch to the address target gives it,
// concurrency at a time, skipping the nodes skip (if not nil) reports
// when their turn comes.
func (r *runner) joinEach(ctx context.Context, batch []*node, concurrency int, skip func(*node) bool, target func(*node) string, joined, retries *atomic.Int32, joinErr *atomic.Pointer[error]) {
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, nd := range batch {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		if skip != nil && skip(nd) {
			<-sem
			continue
		}
		wg.Add(1)
		go func(nd *node, seed string) {
			defer wg.Done()
			defer func() { <-sem }()
			// A join can time out when the process is saturated; the
			// daemon's join loop would try again, and so does this.
			var err error
			for attempt := range joinAttempts {
				if attempt > 0 && sleepCtx(ctx, time.Second) != nil {
					break
				}
				if _, err = nd.ml.Join([]string{seed}); err == nil {
					break
				}
				retries.Add(1)
			}
			if err != nil {
				e := fmt.Errorf("%s cannot join (%d attempts): %w", nd.name, joinAttempts, err)
				joinErr.Store(&e)
			}
			joined.Add(1)
		}(nd, target(nd))
	}
	wg.Wait()
}

// waitGossip waits until syncShare percent of the members see every
// member, or the count of those stops growing for syncPlateau (the rest
// miss an alive message or two and would wait for memberlist's periodic
// push/pull), or syncWait passes.
func (r *runner) waitGossip(ctx context.Context, members int) error {
	best, since := -1, time.Now()
	_, _, err := r.waitUntil(ctx, syncWait, func() bool {
		c := r.countLive(members)
		if c > best {
			best, since = c, time.Now()
		}
		return c >= members*syncShare/100 || (c > 0 && time.Since(since) > syncPlateau)
	})
	return err
}

// syncAll is the anti-entropy round at the end of a formation wave.
// Gossip leaves a tail: each node re-sends an alive message a bounded
// number of times, so out of the n² (node, member) pairs a few dozen
// miss their message and wait for memberlist's periodic push/pull (30 s
// apart at 1,000 nodes). Each member that does not see every member
// joins one that does (a push/pull: the full member list in one stream),
// which is the push/pull memberlist would do, brought forward. members
// is how many nodes are in the cluster so far.
func (r *runner) syncAll(ctx context.Context, members int, joined, retries *atomic.Int32) error {
	inCluster := func(nd *node) bool { return nd.ml.LocalNode() != nil && nd.live.Load() > 1 }
	var full, lacking []*node
	for _, nd := range r.nodes {
		switch {
		case int(nd.live.Load()) == members:
			full = append(full, nd)
		case inCluster(nd):
			lacking = append(lacking, nd)
		}
	}
	if len(full) == 0 {
		return fmt.Errorf("formation: no node sees all %d members after %v", members, syncWait)
	}
	// Gossip goes on completing views while the round runs: a member
	// that sees everyone by its turn is skipped. Each push/pull decodes
	// the full member list at both ends, so the round runs fewer at a
	// time than the joins: its burst, on top of the wave's gossip, is
	// what pushed the process towards saturation in the last waves.
	complete := func(nd *node) bool { return int(nd.live.Load()) == members }
	var joinErr atomic.Pointer[error]
	r.joinEach(ctx, lacking, syncConcurrency, complete, func(nd *node) string { return full[nd.idx%len(full)].tr.Addr() }, joined, retries, &joinErr)
	if e := joinErr.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// waves splits the joining nodes into the formation's waves: Waves of
// equal cost, Wave nodes at a time, or all at once.
func (r *runner) waves(others []*node) [][]*node {
	var out [][]*node
	if w := r.cfg.Waves; w > 0 {
		n, start := float64(r.cfg.Nodes), 0
		for k := 1; k <= w && start < len(others); k++ {
			size := int(math.Round(n*math.Sqrt(float64(k)/float64(w)))) - len(r.seeds) - start
			if k == w {
				size = len(others) - start
			}
			size = max(1, min(size, len(others)-start))
			out = append(out, others[start:start+size])
			start += size
		}
		return out
	}
	wave := r.cfg.Wave
	if wave <= 0 {
		wave = len(others)
	}
	for start := 0; start < len(others); start += wave {
		out = append(out, others[start:min(start+wave, len(others))])
	}
	return out
}

// waitCPUBelow waits until the process used less than cores of CPU on
// average over the last two seconds, or timeout passes.
func (r *runner) waitCPUBelow(ctx context.Context, cores float64, timeout time.Duration) {
	const step = 500 * time.Millisecond
	deadline := time.Now().Add(timeout)
	meter, avg := newCPUMeter(), newMovingMean(int(2*time.Second/step))
	for time.Now().Before(deadline) {
		if sleepCtx(ctx, step) != nil {
			return
		}
		if c, full := avg.add(meter.cores()); full && c < cores {
			return
		}
	}
}

// cpuMeter measures the process's CPU use between calls.
type cpuMeter struct {
	cpu time.Duration
	at  time.Time
}

func newCPUMeter() *cpuMeter { return &cpuMeter{cpu: processCPU(), at: time.Now()} }

// cores returns the CPU used since the previous call (or creation), in
// cores, and starts the next interval.
func (m *cpuMeter) cores() float64 {
	cpu, at := processCPU(), time.Now()
	el := at.Sub(m.at).Seconds()
	c := 0.0
	if el > 0 {
		c = (cpu - m.cpu).Seconds() / el
	}
	m.cpu, m.at = cpu, at
	return c
}

// waveCPU is the process CPU (in cores) below which the next formation
// wave may start.
const waveCPU = 0.8

// syncWait bounds the wait for most members to see every member before
// the anti-entropy round of a wave.
const syncWait = 20 * time.Second

// syncPlateau is how long the count of complete members may stay the
// same before the anti-entropy round starts anyway.
const syncPlateau = time.Second

// syncShare is the percentage of complete members at which the
// anti-entropy round starts: a push/pull costs the lacking node a few
// milliseconds of CPU, less than the gossip tail costs in waiting (90%
// formed 1,000 nodes in 75 s, 50% in 45 s).
const syncShare = 50

// waveTimeout bounds the wait for one formation wave to be absorbed.
const waveTimeout = 30 * time.Second

// joinConcurrency bounds the joins in flight while the cluster forms.
const joinConcurrency = 4

// syncConcurrency is how many anti-entropy push/pulls run at a time.
const syncConcurrency = 2

// joinAttempts is how often a node tries to join its seed while the
// cluster forms before the run fails.
const joinAttempts = 3
