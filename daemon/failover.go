package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/detector"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/election/storage"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/metrics"
	"github.com/ramd/ramd/pg"
)

// electionKind is the mesh message kind that carries election messages
// over memberlist's reliable (TCP) channel, so gossip encryption covers
// them.
const electionKind = mesh.FirstHandlerKind

// tickInterval is the election's logical tick. The loop catches up with
// the monotonic clock, so a slow loop never makes logical time run slower
// than real time (a lease holder must never believe it has more time than
// it has).
const tickInterval = 100 * time.Millisecond

// raft timing in ticks: a leader heartbeats every 300 ms and followers
// campaign after 1-2 s of silence. Every election message opens a TCP
// connection on memberlist's reliable channel, so heartbeats are the
// largest part of an idle daemon's CPU; 300 ms keeps leader loss
// detection well inside the lease TTL.
const (
	electionTicks  = 10
	heartbeatTicks = 3
)

// role is what the election wants this node's PostgreSQL to be.
type role int

const (
	wantNothing role = iota // no decision yet: leave PostgreSQL as it is
	wantPrimary             // primary under token, writes only with the lease
	wantReplica             // follow primaryID
	wantFenced              // stopped: lease lost, no new primary known yet
)

func (r role) String() string {
	return [...]string{"none", "primary", "replica", "fenced"}[r]
}

// desired is the election's instruction to the PostgreSQL reconciler.
type desired struct {
	role      role
	token     uint64
	primaryID int
	reason    string
}

// failoverLoop runs the election node: it owns election.Node, persists its
// state, carries its messages over the mesh, feeds it the detector's
// verdicts and turns its actions into the desired PostgreSQL role.
type failoverLoop struct {
	d     *Daemon
	log   *slog.Logger
	store *storage.Store
	det   *detector.Detector
	lease election.LeaseConfig
	inbox chan election.Message
	start time.Time

	node   election.Backend
	ticked int64

	// pglock backend only: the node (also in node) and its database
	// operations' executor.
	lock     *election.LockNode
	lockExec *lockExec
	results  chan election.LockResult

	sendMu sync.Mutex
	queues map[uint64]chan []byte

	// wantChanged wakes the daemon's loop when want changes.
	wantChanged chan struct{}
	// calls run on the loop's goroutine, which owns node (see call).
	calls chan func()

	mu         sync.RWMutex
	want       desired
	state      election.ClusterState
	leaseUntil time.Time
	leader     uint64
	phase      string
	// pglock: the row has been read; why the coordination database
	// counts as unreachable ("" while it answers).
	stateKnown  bool
	unreachable string

	lastBootstrapPropose time.Time
	// hadState: the store held election state when the daemon started.
	hadState bool
	// unservedSince: since when this node, named primary, has not served
	// as one; releasedToken: the token it gave up.
	unservedSince time.Time
	releasedToken uint64

	// syncInFlight is the SetSync proposal that may still apply;
	// syncReason the last plan's reason (logged when it changes).
	syncInFlight *syncProposal
	syncReason   string
	// standbyPos is the highest standby position reported (see localFrom),
	// on the history replaced standbyHist times (writerToken.replacements).
	standbyPos  election.Position
	standbyHist uint64
	// story is what statelog.go last logged.
	story storyState
}

func newFailoverLoop(d *Daemon) (*failoverLoop, error) {
	st, err := storage.Open(storage.Options{Dir: d.cfg.Cluster.StateDirectory, Logger: d.nodeLog.With("component", "election")})
	if err != nil {
		return nil, err
	}
	lease, dcfg := leaseConfig(d.cfg.Failover), detectorConfig(d.cfg.Failover)
	if err := lease.Validate(); err != nil {
		st.Close()
		return nil, fmt.Errorf("daemon: [failover]: %w", err)
	}
	det, err := detector.New(dcfg)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("daemon: [failover]: %w", err)
	}
	f := &failoverLoop{
		d: d, log: d.nodeLog.With("component", "election"), store: st, det: det, lease: lease,
		inbox: make(chan election.Message, 1024), start: time.Now(), queues: map[uint64]chan []byte{},
		wantChanged: make(chan struct{}, 1), calls: make(chan func(), 16),
	}
	_, f.hadState = st.Load()
	if err := d.mesh.RegisterHandler(electionKind, f.receive); err != nil {
		st.Close()
		return nil, err
	}
	return f, nil
}

// receive is the mesh handler: decode and queue for the loop. A malformed
// message is logged and dropped.
func (f *failoverLoop) receive(payload []byte) {
	m, err := election.DecodeMessage(payload)
	if err != nil {
		f.log.Warn("dropping malformed election message", "error", err)
		return
	}
	select {
	case f.inbox <- m:
	default:
		f.log.Warn("election inbox full; dropping message", "type", string(m.Type), "from", m.From)
	}
}

// now is the logical time: monotonic time since the loop started.
func (f *failoverLoop) now() time.Duration { return time.Since(f.start) }

// run drives the election until ctx ends.
func (f *failoverLoop) run(ctx context.Context) {
	defer f.store.Close()
	defer f.closeLock()
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.release()
			return
		case m := <-f.inbox:
			if f.node != nil && m.Type == election.MsgPositionRequest {
				// The coordinator decides on this answer: give it the
				// position now, not the last periodic check's (up to a
				// check interval old, which after a switchover can miss
				// the old primary's final record).
				cctx, cancel := context.WithTimeout(ctx, freshPositionTimeout)
				if h := f.d.check(cctx); h.Accepting {
					f.node.SetLocal(f.localFrom(h))
				}
				cancel()
			}
			if f.node != nil {
				if err := f.node.Step(m); err != nil {
					f.log.Debug("election message refused", "type", string(m.Type), "from", m.From, "error", err)
				}
			}
		case <-t.C:
			f.tick()
		case fn := <-f.calls:
			fn()
		case r := <-f.results:
			f.lock.OnResult(r)
		}
		f.handleReady(ctx)
	}
}

// release gives up the primary lease on a clean stop, so the coordinator
// fails over at once instead of waiting for the lease to run out.
func (f *failoverLoop) release() {
	if f.node == nil {
		return
	}
	f.node.Release("daemon stopping")
	f.handleReady(context.Background())
	// The Release messages travel on the per-peer senders: give them a
	// moment before the mesh goes away.
	time.Sleep(300 * time.Millisecond)
}

// tick catches logical time up with the monotonic clock and does the
// periodic work: create the node, observe the primary, bootstrap the
// replicated state, add new members.
func (f *failoverLoop) tick() {
	if f.node == nil && !f.create() {
		return
	}
	f.node.SetWallNow(time.Now().UnixMilli())
	target := int64(f.now() / tickInterval)
	for f.ticked < target {
		f.ticked++
		f.node.Tick()
	}
	f.node.SetLocal(f.local())
	st := f.node.State()
	members := f.d.mesh.Members()
	f.logCoordinator(st)
	if f.node.IsLeader() {
		f.lead(st, members)
	}
	f.observe(st, members)
	f.checkSelf(st)
	f.planSync(st, members)
	f.forgetRemoved(st, members)
	f.publish(st)
}

// forgetRemoved drops members an operator removed (remove-node) from this
// node's mesh view once they are down, so every node stops listing them.
func (f *failoverLoop) forgetRemoved(st election.ClusterState, members []mesh.Member) {
	for _, m := range members {
		if id := uint64(m.State.NodeID); id != 0 && slices.Contains(st.Removed, id) && m.Liveness != mesh.Alive && m.Liveness != mesh.Suspect {
			f.d.mesh.Forget(m.State.NodeID)
		}
	}
}

// checkSelf gives up the primary role when this node cannot serve it: its
// PostgreSQL has not been a healthy primary under a valid lease for
// PrimaryStartTimeout (a crash the in-place restart did not fix, or a
// lease no quorum will grant any more). Releasing fences PostgreSQL and
// lets the coordinator — possibly this very node, whose detector never
// judges itself — fail over at once.
func (f *failoverLoop) checkSelf(st election.ClusterState) {
	self := uint64(f.d.cfg.Cluster.NodeID)
	if !st.Bootstrapped || st.Primary != self || st.Maintenance || f.releasedToken == st.Token {
		f.unservedSince = time.Time{}
		return
	}
	h := f.d.LocalHealth()
	serving := h.Running && h.Accepting && !h.InRecovery && f.node.LeaseValid()
	if serving {
		f.unservedSince = time.Time{}
		return
	}
	if f.unservedSince.IsZero() {
		f.unservedSince = time.Now()
		return
	}
	if limit := f.d.effective().Failover.PrimaryStartTimeout.Duration; time.Since(f.unservedSince) >= limit {
		reason := fmt.Sprintf("not a healthy primary under a valid lease for %s", limit)
		f.log.Warn("releasing the primary role", "token", st.Token, "reason", reason)
		f.releasedToken = st.Token
		f.node.Release(reason)
	}
}

// create starts the election node: from persisted state after a restart,
// as a founding voter when expect_nodes daemons see each other, or as a
// joiner that the coordinator adds later.
func (f *failoverLoop) create() bool {
	if f.d.cfg.Cluster.Election == "pglock" {
		return f.createLock()
	}
	cfg := election.Config{ID: uint64(f.d.cfg.Cluster.NodeID), TickInterval: tickInterval, ElectionTick: electionTicks, HeartbeatTick: heartbeatTicks, Start: f.now(), Lease: f.lease, Logger: raftLogger{f.log},
		MaximumLagOnFailover: uint64(f.d.cfg.Failover.MaximumLagOnFailover)}
	if m := f.d.cfg.Failover.SynchronousMode; m != "off" {
		// Bootstrap promises k of every member; the first primary's plan
		// narrows it to its streaming standbys.
		cfg.Sync = &election.SyncState{Mode: election.SyncMode(m), NumSync: f.d.cfg.Failover.SynchronousNodeCount}
	}
	if p, ok := f.store.Load(); ok {
		cfg.Restart = p
	} else {
		alive := aliveIDs(f.d.mesh.Members())
		if len(alive) < f.d.cfg.Cluster.ExpectNodes {
			return false
		}
		founders := alive[:min(len(alive), f.d.cfg.Cluster.ExpectNodes, election.MaxVoters)]
		if slices.Contains(founders, cfg.ID) {
			cfg.Peers = founders
		}
	}
	n, err := election.NewNode(cfg)
	if err != nil {
		f.log.Error("cannot start the election node", "error", err)
		return false
	}
	f.node = n
	f.ticked = int64(cfg.Start / tickInterval)
	f.log.Info("election node started", "restart", cfg.Restart != nil, "founders", cfg.Peers)
	return true
}

// lead is the coordinator's periodic work.
func (f *failoverLoop) lead(st election.ClusterState, members []mesh.Member) {
	if !st.Bootstrapped {
		// The first primary is the one bootstrap made (lowest id ran
		// initdb); it is recorded with token 1.
		if time.Since(f.lastBootstrapPropose) < 2*time.Second {
			return
		}
		if p, ok := primaryOf(members, 0); ok && p.Healthy {
			f.lastBootstrapPropose = time.Now()
			if err := f.node.ProposeBootstrap(uint64(p.NodeID)); err != nil {
				f.log.Warn("proposing the first primary failed", "error", err)
			}
		}
		return
	}
	for _, m := range members {
		id := uint64(m.State.NodeID)
		if m.Liveness != mesh.Alive || id == 0 || slices.Contains(st.Voters, id) || slices.Contains(st.Learners, id) || slices.Contains(st.Removed, id) {
			continue
		}
		if err := f.node.AddMember(id); err != nil {
			f.log.Warn("adding member failed", "node_id", id, "error", err)
		}
	}
}

// observe feeds the detector and reports a failed primary to the
// coordinator (only the coordinator acts on it).
func (f *failoverLoop) observe(st election.ClusterState, members []mesh.Member) {
	if !st.Bootstrapped || st.Primary == 0 || st.Primary == uint64(f.d.cfg.Cluster.NodeID) || st.Maintenance {
		return
	}
	o := detector.Observation{Now: f.now(), WallNow: time.Now().UnixMilli(), PrimaryID: int(st.Primary)}
	for i := range members {
		if members[i].State.NodeID == int(st.Primary) {
			o.Primary = &members[i]
		}
	}
	if p := o.Primary; p != nil && p.State.Role == mesh.RolePrimary && p.State.PGRunning && p.State.WriterTokenKnown {
		// Where the primary's WAL was last seen bounds what an
		// asynchronous failover may lose (maximum_lag_on_failover).
		f.node.ObservePrimary(st.Token, election.Position{Timeline: p.State.Timeline, LSN: p.State.LSN,
			Token: p.State.WriterToken, TokenKnown: true})
	}
	o.LastLeaseRequest, o.LeaseSeen = f.node.LastLeaseRequest(st.Primary)
	v := f.det.Observe(o)
	if v.Status == detector.PrimaryFailed {
		f.node.ReportPrimaryFailed(v.Reason)
	}
}

// local describes this node's PostgreSQL for position requests.
func (f *failoverLoop) local() election.Local { return f.localFrom(f.d.LocalHealth()) }

// freshPositionTimeout bounds the extra health check made to answer a
// position request (see run).
const freshPositionTimeout = 200 * time.Millisecond

func (f *failoverLoop) localFrom(h pg.Health) election.Local {
	pos := election.Position{Timeline: h.Timeline, LSN: uint64(max(h.ReceiveLSN, h.ReplayLSN))}
	if !h.InRecovery {
		pos.LSN = uint64(h.CurrentLSN)
	}
	if n := f.d.writer.replacements(); n != f.standbyHist {
		// The history was replaced (rewind, clone) since: what was seen
		// before says nothing about the new one, even on a timeline of
		// the same number.
		f.standbyPos, f.standbyHist = election.Position{}, n
	}
	if h.Accepting && h.InRecovery {
		// A standby's flushed WAL does not shrink, but the receive
		// position PostgreSQL reports does: when the WAL receiver
		// restarts (its primary stopped) it goes back to the start of
		// the segment it asks for. Report the highest position seen on
		// this timeline instead.
		if pos.Timeline == f.standbyPos.Timeline {
			pos.LSN = max(pos.LSN, f.standbyPos.LSN)
		}
		if pos.Compare(f.standbyPos) > 0 {
			f.standbyPos = pos
		}
	}
	if wt := f.d.observeWriterToken(h); wt.Pending {
		// The history was replaced (rewind, clone): what was seen before
		// says nothing about it, and the position is unknown until the
		// node streams the primary's timeline.
		f.standbyPos = election.Position{}
		pos = wt.apply(pos)
	} else if h.Accepting {
		pos = wt.apply(pos)
	}
	tags := f.d.cfg.Cluster.Tags
	return election.Local{
		FencedPrimary: f.fencedPrimary(h),
		Healthy:       h.Running && h.Accepting && h.InRecovery,
		Position:      pos,
		Priority:      atoiOr(tags["priority"], 0),
		NoFailover:    isTrue(tags["nofailover"]),
	}
}

// fencedPrimary reports whether this node is the primary named under the
// current token, fenced (no lease, PostgreSQL stopped), with a data
// directory that still holds that token's whole history: a primary's
// directory (no standby.signal), not marked for rejoin, its writer token
// the current token, and PostgreSQL not failing to start. The coordinator
// may then promote it again rather than lose WAL (election.Choose,
// reclaim).
func (f *failoverLoop) fencedPrimary(h pg.Health) bool {
	if f.node == nil || h.Running || f.node.LeaseValid() {
		return false
	}
	st := f.node.State()
	if !st.Bootstrapped || st.Primary != uint64(f.d.cfg.Cluster.NodeID) {
		return false
	}
	if wt := f.d.writer.get(); !wt.Known || wt.Token != st.Token {
		return false
	}
	return !f.d.isStandbyDataDir() && !f.d.rejoinNeeded() && !f.d.startFailing.Load()
}

// handleReady processes the node's work in the order election.Ready
// prescribes: fence first, persist, send, act, advance.
func (f *failoverLoop) handleReady(ctx context.Context) {
	for f.node != nil && f.node.HasReady() {
		rd := f.node.Ready()
		for _, a := range rd.Actions {
			if a.Kind == election.ActFence || a.Kind == election.ActDemote {
				f.fence(ctx, a)
			}
		}
		if err := f.save(rd); err != nil {
			// Without durable votes and revocations the node could break
			// its promises after a restart: stop taking part.
			f.log.Error("persisting election state failed; leaving the election", "error", err)
			f.node = nil
			return
		}
		for _, m := range rd.Messages {
			f.send(m)
		}
		for _, a := range rd.Actions {
			f.act(a)
		}
		for _, op := range rd.Ops {
			f.lockExec.submit(op)
		}
		for _, e := range rd.Events {
			f.log.Info(e.Kind, "token", f.node.State().Token, "reason", e.Reason, "node_id", f.d.cfg.Cluster.NodeID)
		}
		if rd.State != nil {
			f.log.Debug("cluster state applied", "primary", rd.State.Primary, "token", rd.State.Token, "voters", rd.State.Voters, "maintenance", rd.State.Maintenance)
			f.logApplied(*rd.State)
			// At once, not at the next tick: the failover duration ends
			// when the promotion applies.
			f.updateMetrics(*rd.State, f.leaseEnd(), f.node.FailoverPhase())
		}
		f.node.Advance()
	}
}

// fence stops this node's PostgreSQL from acknowledging writes at once.
func (f *failoverLoop) fence(ctx context.Context, a election.Action) {
	f.setWant(desired{role: wantFenced, token: a.Token, reason: a.String()})
	if _, running := f.d.pg.Running(); !running {
		return
	}
	h := f.d.LocalHealth()
	if h.InRecovery {
		return // a standby acknowledges no writes
	}
	f.log.Warn("fencing PostgreSQL (immediate stop)", "token", a.Token, "reason", a.Reason)
	if err := f.d.pg.Fence(ctx); err != nil {
		f.log.Error("fencing failed", "error", err)
	}
}

// act turns an action into the desired PostgreSQL role; the daemon's
// reconciler carries it out.
func (f *failoverLoop) act(a election.Action) {
	f.log.Info("election action", "action", a.String(), "node_id", f.d.cfg.Cluster.NodeID)
	switch a.Kind {
	case election.ActLeaseAcquired:
		// A promotion waits for the lease: reconcile as soon as it is
		// held (publish first, so HoldsLease sees it).
		f.publish(f.node.State())
		f.resumeAfterFence(a)
		f.wake()
	case election.ActPromote:
		f.d.gate.resume()
		f.setWant(desired{role: wantPrimary, token: a.Token, reason: a.Reason})
	case election.ActStepDown:
		f.stepDown(a)
	case election.ActDemote, election.ActFollow:
		if a.NewPrimary != 0 && a.NewPrimary != uint64(f.d.cfg.Cluster.NodeID) {
			reason := a.Reason
			if reason == "" {
				reason = fmt.Sprintf("token %d names node %d as primary", a.Token, a.NewPrimary)
			}
			f.setWant(desired{role: wantReplica, token: a.Token, primaryID: int(a.NewPrimary), reason: reason})
		}
	}
}

// send queues m for its destination; one goroutine per peer delivers in
// order without blocking the loop. A full queue drops (raft and the lease
// protocol tolerate loss).
func (f *failoverLoop) send(m election.Message) {
	b, err := m.Encode()
	if err != nil {
		f.log.Error("encoding election message", "error", err)
		return
	}
	if m.To == uint64(f.d.cfg.Cluster.NodeID) {
		f.receive(b)
		return
	}
	f.sendMu.Lock()
	q, ok := f.queues[m.To]
	if !ok {
		q = make(chan []byte, 256)
		f.queues[m.To] = q
		go f.deliver(m.To, q)
	}
	f.sendMu.Unlock()
	select {
	case q <- b:
	default:
	}
}

func (f *failoverLoop) deliver(to uint64, q chan []byte) {
	for b := range q {
		mem, ok := f.d.mesh.Member(int(to))
		if !ok || (mem.Liveness != mesh.Alive && mem.Liveness != mesh.Suspect) {
			continue
		}
		if err := f.d.mesh.SendReliable(mem.State.Name, electionKind, b); err != nil {
			f.log.Debug("election message not delivered", "to", to, "error", err)
		}
	}
}

func (f *failoverLoop) setWant(w desired) {
	f.mu.Lock()
	changed := f.want.role != w.role || f.want.token != w.token || f.want.primaryID != w.primaryID
	if !changed && w.reason == "" {
		// A repeated instruction without a reason (a follow-up action)
		// keeps the reason of the one that set it, which the role-change
		// and rejoin log lines quote.
		w.reason = f.want.reason
	}
	f.want = w
	f.mu.Unlock()
	if changed {
		f.log.Info("desired role changed", "role", w.role.String(), "token", w.token, "primary", w.primaryID, "reason", w.reason)
		f.wake()
	}
}

// wake tells the daemon's loop to reconcile now.
func (f *failoverLoop) wake() {
	select {
	case f.wantChanged <- struct{}{}:
	default:
	}
}

// Want returns the election's instruction for PostgreSQL.
func (f *failoverLoop) Want() desired {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.want
}

func (f *failoverLoop) publish(st election.ClusterState) {
	until := f.leaseEnd()
	phase := f.node.FailoverPhase()
	var known bool
	var unreachable string
	if f.lock != nil {
		known = f.lock.StateKnown()
		if since, why, down := f.lock.Unreachable(); down {
			unreachable = fmt.Sprintf("coordination database unreachable for %s (%s): no failover possible", (f.lock.Now() - since).Truncate(100*time.Millisecond), why)
		}
	}
	f.mu.Lock()
	f.state, f.leaseUntil, f.leader, f.phase = st, until, f.node.Leader(), phase
	f.stateKnown, f.unreachable = known, unreachable
	f.mu.Unlock()
	f.updateMetrics(st, until, phase)
}

// leaseEnd is when this node's primary lease ends (zero: it holds none).
func (f *failoverLoop) leaseEnd() time.Time {
	if f.node.LeaseValid() {
		return f.start.Add(f.node.LeaseExpiry())
	}
	return time.Time{}
}

// updateMetrics hands the election's view to the metrics: in-memory
// gauge and counter updates only, so it never holds up the loop.
func (f *failoverLoop) updateMetrics(st election.ClusterState, until time.Time, phase string) {
	f.d.metrics.UpdateElection(metrics.Election{
		Bootstrapped: st.Bootstrapped,
		Primary:      st.Primary,
		Token:        st.Token,
		Maintenance:  st.Maintenance,
		History:      st.History,
		Coordinator:  f.node.IsLeader(),
		FailingOver:  phase != "",
		LeaseUntil:   until,

		CoordinationUnreachable: f.lock != nil && f.lockUnreachable(),
	})
}

// neverBootstrapped reports whether this node has never seen the
// election record a primary: a brand-new cluster still forming.
func (f *failoverLoop) neverBootstrapped() bool {
	if f == nil {
		return true
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.d.cfg.Cluster.Election == "pglock" {
		// Only a read row says "no primary recorded yet"; before the
		// first read nothing is known.
		return f.stateKnown && !f.state.Bootstrapped
	}
	return !f.hadState && !f.state.Bootstrapped
}

// HoldsLease reports whether this node holds a valid primary lease now,
// judged against the monotonic clock rather than the last tick.
func (f *failoverLoop) HoldsLease() bool { return f.holdsLeaseAt(time.Now()) }

// holdsLeaseAt reports whether the lease is still valid at t.
func (f *failoverLoop) holdsLeaseAt(t time.Time) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return !f.leaseUntil.IsZero() && t.Before(f.leaseUntil)
}

// Snapshot returns the applied cluster state and the coordinator's phase.
func (f *failoverLoop) Snapshot() (election.ClusterState, uint64, string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Clone(), f.leader, f.phase
}

// leaseConfig maps [failover] onto the election's lease. Safety covers
// the tick: the holder notices expiry at a tick, up to one tick late.
func leaseConfig(c configs.FailoverConfig) election.LeaseConfig {
	return election.LeaseConfig{
		TTL:           c.LeaseTTL.Duration,
		RenewInterval: c.LeaseRenewInterval.Duration,
		MaxDrift:      float64(c.MaxClockDriftPPM) / 1e6,
		Safety:        tickInterval,
	}
}

// detectorConfig maps [failover] onto the detector: a primary whose
// renewals are silent for two renew intervals is no longer proven alive.
func detectorConfig(c configs.FailoverConfig) detector.Config {
	d := detector.DefaultConfig()
	d.FailAfter = c.FailAfter.Duration
	d.LeaseSilence = 2 * c.LeaseRenewInterval.Duration
	d.PrimaryStartTimeout = max(c.PrimaryStartTimeout.Duration, d.FailAfter)
	return d
}

func aliveIDs(ms []mesh.Member) []uint64 {
	var ids []uint64
	for _, m := range ms {
		if m.Liveness == mesh.Alive && m.State.NodeID > 0 {
			ids = append(ids, uint64(m.State.NodeID))
		}
	}
	slices.Sort(ids)
	return ids
}

// raftLogger sends raft's own log to slog at debug level (warnings and
// errors at their level).
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...), "source", "raft") }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...), "source", "raft") }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...), "source", "raft") }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...), "source", "raft") }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...), "source", "raft") }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...), "source", "raft") }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...), "source", "raft") }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...), "source", "raft") }
func (r raftLogger) Fatal(v ...any) {
	r.l.Error(fmt.Sprint(v...), "source", "raft")
	panic(fmt.Sprint(v...))
}
func (r raftLogger) Fatalf(f string, v ...any) { r.Fatal(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)            { r.Fatal(v...) }
func (r raftLogger) Panicf(f string, v ...any) { r.Fatal(fmt.Sprintf(f, v...)) }
