package election

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// LockConfig configures a LockNode.
type LockConfig struct {
	// ID is this node's id (the mesh NodeID), non-zero.
	ID uint64
	// TickInterval is the logical time one Tick stands for. Default 100ms.
	TickInterval time.Duration
	// Start is the logical time of the node's first tick.
	Start time.Duration
	// Lease tunes the primary lease. The coordination database's row
	// holds lease_until = now() + TTL after each renewal; the holder keeps
	// sent + TTL − DriftMargin on its own clock (see LockNode).
	Lease LeaseConfig
	// PositionTimeout: how long the coordinator waits for positions.
	// Default 2 × Lease.RenewInterval.
	PositionTimeout time.Duration
	// Sync is the synchronous setup the Bootstrap command carries.
	Sync *SyncState
	// MaximumLagOnFailover (bytes), as in Config.
	MaximumLagOnFailover uint64
}

// LockNode is one daemon's participant in the pglock election: the
// replicated state lives in a coordination PostgreSQL database, the
// coordinator is whichever daemon's session holds an advisory lock, and
// the primary renews its lease with an UPDATE evaluated on the database's
// clock. Like Node it is a pure state machine with the same Tick, Step,
// Ready, Advance shape: it never touches the database itself. It asks for
// operations (Ready.Ops) and learns their outcome (OnResult); the daemon
// runs them with election/pglock.
//
// The lease. The holder measures from when it asked for the renewal (the
// operation is emitted at logical time s; the UPDATE is executed later,
// at real time t_e ≥ t_s): its lease runs until s + TTL − m on its own
// clock, ending in real time at most at t_s + (TTL−m)/(1−ρ). The row's
// lease_until = now() + TTL is read on the database's clock at t_e and
// ends in real time at least at t_e + TTL/(1+ρ). The first is earlier
// because m = 2·TTL·ρ + safety > TTL·2ρ/(1+ρ). The coordinator promotes
// with a compare-and-set that requires lease_until < now() on the same
// database clock (after revoking the token so no renewal can extend it),
// or a release: the old primary has certainly stopped acknowledging
// writes before the new token exists.
type LockNode struct {
	cfg LockConfig
	id  uint64
	now time.Duration

	state        ClusterState
	stateChanged bool
	row          LockRow
	rowKnown     bool
	local        Local
	wallNow      int64

	seq      uint64
	inflight map[LockOpKind]uint64
	// applying: commands in flight (seq → key); the same command is not
	// sent twice while one is in flight. promoting: the promotion's seq.
	applying  map[uint64]string
	promoting uint64
	ops       []LockOp

	locked      bool
	nextLockTry time.Duration
	nextRead    time.Duration
	// readAgain: a read was asked for while one was in flight (its
	// answer may predate the change); read again when it returns.
	readAgain  bool
	downSince  time.Duration // 0: the database answers
	downReason string
	// upSince: when the database answered again after being unreachable
	// (see triggers).
	upSince time.Duration

	// The primary's lease (this node's own).
	leaseToken  uint64
	leaseExpiry time.Duration
	renewSent   time.Duration
	nextRenew   time.Duration
	leaseHeld   bool

	promoted     uint64
	following    uint64
	released     uint64
	releaseFinal *Position
	steppingDown uint64

	// For the detector: when the primary's lease was last seen extended.
	lastRenewSeen map[uint64]time.Duration
	lastLeaseEnd  time.Duration
	lastRowToken  uint64

	coord *lockFailover
	// primarySeen: where the current primary was last seen (ObservePrimary).
	primarySeen primaryWatch
	// releaseFinal reported by the old primary (for the coordinator).
	finals map[uint64]Position

	msgs    []Message
	local_  []Message
	actions []Action
	events  []Event
}

type lockFailover struct {
	token     uint64
	old       uint64
	reason    string
	phase     failoverPhase
	released  bool
	revoked   bool
	waitUntil time.Duration
	positions map[uint64]Candidate
	asked     time.Duration
	lastSend  time.Duration
	proposed  uint64
	retryAt   time.Duration
	waiting   string
	started   time.Duration
	manual    bool
}

var _ Backend = (*LockNode)(nil)

// NewLockNode creates a pglock election node. It knows nothing until the
// first OnResult of a read: State is empty and not bootstrapped until
// then (see StateKnown).
func NewLockNode(cfg LockConfig) (*LockNode, error) {
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.Lease == (LeaseConfig{}) {
		cfg.Lease = DefaultLeaseConfig()
	}
	if cfg.PositionTimeout == 0 {
		cfg.PositionTimeout = 2 * cfg.Lease.RenewInterval
	}
	if cfg.ID == 0 {
		return nil, fmt.Errorf("%w: node id 0", ErrConfig)
	}
	if err := cfg.Lease.Validate(); err != nil {
		return nil, err
	}
	if cfg.Lease.RenewInterval < cfg.TickInterval {
		return nil, fmt.Errorf("%w: renew interval %v below the tick interval %v", ErrConfig, cfg.Lease.RenewInterval, cfg.TickInterval)
	}
	n := &LockNode{cfg: cfg, id: cfg.ID, now: cfg.Start, inflight: map[LockOpKind]uint64{}, applying: map[uint64]string{},
		lastRenewSeen: map[uint64]time.Duration{}, finals: map[uint64]Position{}}
	n.event("start", fmt.Sprintf("pglock election at %v", n.now))
	n.nextLockTry, n.nextRead = n.now+cfg.Lease.RenewInterval, n.now+cfg.Lease.RenewInterval
	n.op(LockOp{Kind: OpTryLock})
	n.op(LockOp{Kind: OpRead})
	return n, nil
}

// ID returns the node's id.
func (n *LockNode) ID() uint64 { return n.id }

// Now returns the node's logical time.
func (n *LockNode) Now() time.Duration { return n.now }

// State returns a copy of the state last read from the database.
func (n *LockNode) State() ClusterState { return n.state.Clone() }

// StateKnown reports whether the node has read the row at least once.
// Until then a not-bootstrapped State means "unknown", not "new cluster".
func (n *LockNode) StateKnown() bool { return n.rowKnown }

// IsLeader reports whether this node holds the coordinator lock.
func (n *LockNode) IsLeader() bool { return n.locked }

// Leader is the coordinator as last read from the database (0: none).
func (n *LockNode) Leader() uint64 {
	if n.locked {
		return n.id
	}
	return n.row.Coordinator
}

// LeaseValid reports whether this node holds a valid primary lease now.
func (n *LockNode) LeaseValid() bool {
	return n.leaseToken != 0 && n.leaseToken == n.state.Token && n.now < n.leaseExpiry
}

// LeaseExpiry is the end of this node's lease (logical time).
func (n *LockNode) LeaseExpiry() time.Duration { return n.leaseExpiry }

// LastLeaseRequest reports when this node last saw id's lease extended in
// the database (input for the detector).
func (n *LockNode) LastLeaseRequest(id uint64) (time.Duration, bool) {
	t, ok := n.lastRenewSeen[id]
	return t, ok
}

// SetLocal records this node's PostgreSQL facts.
func (n *LockNode) SetLocal(l Local) { n.local = l }

// SetWallNow gives the node the daemon's wall clock (Unix ms), recorded
// in commands only.
func (n *LockNode) SetWallNow(unixMS int64) { n.wallNow = unixMS }

// Unreachable reports since when (logical time) the coordination
// database has not answered, and why; ok false while it answers.
func (n *LockNode) Unreachable() (since time.Duration, reason string, ok bool) {
	return n.downSince, n.downReason, n.downSince != 0
}

func (n *LockNode) event(kind, reason string) {
	n.events = append(n.events, Event{At: n.now, Node: n.id, Kind: kind, Reason: reason})
}

func (n *LockNode) act(a Action) { n.actions = append(n.actions, a) }

func (n *LockNode) op(o LockOp) {
	if o.Kind == OpApply {
		key := applyKey(o.Command)
		for _, k := range n.applying {
			if k == key {
				return
			}
		}
		n.seq++
		o.Seq = n.seq
		n.applying[o.Seq] = key
		if o.Command.Type == CmdPromote {
			n.promoting = o.Seq
		}
		n.ops = append(n.ops, o)
		return
	}
	if _, busy := n.inflight[o.Kind]; busy {
		return
	}
	n.seq++
	o.Seq = n.seq
	n.inflight[o.Kind] = o.Seq
	n.ops = append(n.ops, o)
}

// applyKey identifies a command for deduplication (its encoding).
func applyKey(c *Command) string {
	b, _ := c.Encode()
	return string(b)
}

func (n *LockNode) send(m Message) {
	m.From = n.id
	if m.To == n.id {
		n.local_ = append(n.local_, m)
		return
	}
	n.msgs = append(n.msgs, m)
}

func (n *LockNode) drainLocal() {
	for i := 0; i < len(n.local_); i++ {
		_ = n.handle(n.local_[i])
	}
	n.local_ = n.local_[:0]
}

// Tick advances the logical clock by one TickInterval and asks for the
// periodic operations: take or confirm the lock, read the row, renew.
func (n *LockNode) Tick() {
	n.now += n.cfg.TickInterval
	ri := n.cfg.Lease.RenewInterval
	if n.now >= n.nextLockTry {
		n.nextLockTry = n.now + ri
		n.op(LockOp{Kind: OpTryLock})
	}
	if n.now >= n.nextRead {
		n.nextRead = n.now + ri
		n.op(LockOp{Kind: OpRead})
	}
	n.primaryDuties()
	n.coordinate()
	n.drainLocal()
}

// readNow reads the row at once (again after the read in flight).
func (n *LockNode) readNow() {
	if _, busy := n.inflight[OpRead]; busy {
		n.readAgain = true
		return
	}
	n.nextRead = n.now + n.cfg.Lease.RenewInterval
	n.op(LockOp{Kind: OpRead})
}

// Step feeds a message from another node (position requests and answers,
// releases); anything else is refused.
func (n *LockNode) Step(m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	if m.To != n.id {
		return fmt.Errorf("election: message for %d delivered to %d", m.To, n.id)
	}
	err := n.handle(m)
	n.drainLocal()
	return err
}

func (n *LockNode) handle(m Message) error {
	switch m.Type {
	case MsgPositionRequest:
		c := candidateOf(n.id, n.local)
		n.send(Message{Type: MsgPosition, To: m.From, Token: m.Token, Candidate: &c})
	case MsgPosition:
		f := n.coord
		if f == nil || f.phase != phaseCollecting || m.Token != f.token || m.Candidate.ID != m.From {
			return nil
		}
		f.positions[m.From] = *m.Candidate
		n.coordinate()
	case MsgRelease:
		// The primary sends this once the database recorded its release
		// (with its final position after a clean stop): the coordinator
		// need not wait for its next read of the row. The promotion's
		// compare-and-set still checks the release in the database.
		if m.From != n.state.Primary || m.Token != n.state.Token {
			return nil
		}
		if m.Final != nil {
			n.finals[m.Token] = *m.Final
		}
		if n.locked {
			n.startFailover(m.Token, n.releaseReason(), true)
			n.coordinate()
		}
	case MsgChanged:
		n.readNow()
	default:
		return fmt.Errorf("election: %s messages are not used by the pglock backend", m.Type)
	}
	return nil
}

// OnResult feeds the outcome of an operation from Ready.Ops.
func (n *LockNode) OnResult(r LockResult) {
	if seq, ok := n.inflight[r.Kind]; ok && seq == r.Seq {
		delete(n.inflight, r.Kind)
	}
	promotion := r.Kind == OpApply && r.Seq == n.promoting && r.Seq != 0
	if r.Kind == OpApply {
		delete(n.applying, r.Seq)
		if promotion {
			n.promoting = 0
		}
	}
	switch {
	case r.Unreachable:
		if n.downSince == 0 {
			n.downSince = n.now
			n.event("coordination-down", fmt.Sprintf("%s: %v; no failover is possible while the coordination database is unreachable", r.Kind, r.Err))
		}
		n.downReason = fmt.Sprint(r.Err)
	default:
		if n.downSince != 0 {
			n.event("coordination-up", fmt.Sprintf("the coordination database answers again after %v", n.now-n.downSince))
			n.upSince = n.now
		}
		n.downSince, n.downReason = 0, ""
	}
	if r.Row != nil {
		n.applyRow(*r.Row)
	}
	if r.Kind == OpRead && n.readAgain {
		n.readAgain = false
		n.op(LockOp{Kind: OpRead})
	}
	switch r.Kind {
	case OpTryLock:
		held := r.OK && r.Err == nil
		if held != n.locked {
			if held {
				n.event("coordinator", "holds the coordinator lock")
			} else {
				n.event("coordinator-lost", fmt.Sprintf("no longer holds the coordinator lock: %v", r.Err))
			}
		}
		n.locked = held
	case OpRenew:
		n.onRenew(r)
	case OpRevoke:
		if f := n.coord; f != nil && r.OK && r.Row != nil && r.Row.State.Token == f.token {
			f.revoked = true
			f.waitUntil = n.now + WaitFor(n.cfg.Lease, r.Row.Remaining)
			f.phase = phaseWaiting
			n.event("failover", fmt.Sprintf("token %d revoked in the coordination database; lease runs %v more on its clock", f.token, r.Row.Remaining))
		} else if r.NotHolder {
			n.locked = false
		}
	case OpRelease:
		switch {
		case r.OK:
			n.announceRelease()
		case r.Err != nil:
			n.nextRenew = n.now // retry at the next tick
		}
	case OpApply:
		if r.NotHolder {
			n.locked = false
		}
		if r.OK {
			// Tell the others to read the row now (the new primary
			// learns of its promotion without waiting for a poll).
			for _, id := range n.members() {
				if id != n.id {
					n.send(Message{Type: MsgChanged, To: id})
				}
			}
		}
		if r.Err != nil {
			n.event("rejected", r.Err.Error())
			if f := n.coord; f != nil && f.phase == phaseProposed && promotion {
				// Not committed (lease not yet over on the database's
				// clock, the row changed, a timeout): choose again later.
				f.phase, f.lastSend, f.retryAt = phaseCollecting, -1, n.now+n.cfg.Lease.RenewInterval
				clear(f.positions)
			}
		}
	}
	n.primaryDuties()
	n.coordinate()
	n.drainLocal()
}

func (n *LockNode) onRenew(r LockResult) {
	if !r.OK {
		st := n.state
		if r.Row != nil && r.Err == nil && st.Primary == n.id && n.released != st.Token && (r.Row.Revoked >= st.Token || r.Row.Released) {
			// The token is revoked or released in the database: it can
			// never be renewed again. Give it up now (fence first).
			n.Release(fmt.Sprintf("token %d is revoked in the coordination database", st.Token))
		}
		return
	}
	if r.Row == nil || r.Row.State.Token != n.leaseToken {
		return
	}
	if exp := HolderExpiry(n.cfg.Lease, n.renewSent); exp > n.leaseExpiry {
		n.leaseExpiry = exp
	}
	n.checkLease()
}

// applyRow takes the row as the new replicated state.
func (n *LockNode) applyRow(row LockRow) {
	if row.Exists && n.row.Exists && row.State.Token < n.state.Token {
		// A row read before a newer token committed, answered after one
		// that shows it: the lock session and the worker answer
		// independently, so the answer to a statement that ran before a
		// promotion can arrive after the answer to one that ran after it.
		// Tokens only grow in the database; taking it would roll the
		// state back (an old primary was told to promote again under its
		// superseded token: the simulator found it).
		return
	}
	n.rowKnown = true
	n.row = row
	if !row.Exists {
		return
	}
	if p := row.State.Primary; p != 0 {
		end := n.now + row.Remaining
		switch {
		case row.State.Token != n.lastRowToken:
			n.lastRenewSeen[p], n.lastLeaseEnd = n.now, end
		case end > n.lastLeaseEnd+n.cfg.Lease.RenewInterval/2:
			n.lastRenewSeen[p], n.lastLeaseEnd = n.now, end
		}
		n.lastRowToken = row.State.Token
	}
	if !reflect.DeepEqual(row.State, n.state) {
		old := n.state.Token
		n.state = row.State.Clone()
		n.stateChanged = true
		if n.state.Token != old {
			n.event("state", fmt.Sprintf("token %d names node %d", n.state.Token, n.state.Primary))
		}
		n.afterApply()
	}
}

// afterApply turns the state into actions for this node (as Node's).
func (n *LockNode) afterApply() {
	st := n.state
	if !st.Bootstrapped {
		return
	}
	if st.Primary == n.id && n.promoted != st.Token {
		n.promoted = st.Token
		n.leaseToken, n.leaseExpiry = st.Token, 0
		n.nextRenew = n.now
		n.act(Action{Kind: ActPromote, Token: st.Token, Reason: lastReason(st)})
		n.event("promote", fmt.Sprintf("this node is primary under token %d", st.Token))
		n.primaryDuties()
		return
	}
	if st.Primary == n.id {
		n.checkStepDown()
		return
	}
	if n.promoted != 0 {
		old := n.promoted
		n.promoted = 0
		n.leaseToken, n.leaseExpiry = 0, 0
		n.leaseHeld = false
		n.act(Action{Kind: ActDemote, Token: st.Token, NewPrimary: st.Primary, Reason: fmt.Sprintf("token %d supersedes ours (%d)", st.Token, old)})
		n.event("demote", fmt.Sprintf("token %d names node %d", st.Token, st.Primary))
	}
	if n.following != st.Token {
		n.following = st.Token
		n.act(Action{Kind: ActFollow, Token: st.Token, NewPrimary: st.Primary})
	}
}

func (n *LockNode) checkStepDown() {
	st := &n.state
	sw := st.Switchover
	if sw == nil || sw.From != n.id || st.Primary != n.id || n.steppingDown == st.Token || n.released == st.Token {
		return
	}
	if sw.ScheduledAt != 0 && n.wallNow < sw.ScheduledAt {
		return
	}
	n.steppingDown = st.Token
	n.act(Action{Kind: ActStepDown, Token: st.Token, NewPrimary: sw.To, Reason: "planned switchover"})
	n.event("step-down", fmt.Sprintf("token %d: planned switchover to %d", st.Token, sw.To))
}

func (n *LockNode) primaryDuties() {
	st := n.state
	n.checkStepDown()
	if st.Primary == n.id && n.released == st.Token && st.Token != 0 {
		if !n.row.Released && n.now >= n.nextRenew {
			n.nextRenew = n.now + n.cfg.Lease.RenewInterval
			op := LockOp{Kind: OpRelease, Token: st.Token}
			if n.releaseFinal != nil {
				f := *n.releaseFinal
				op.Final = &f
			}
			n.op(op)
		}
		n.checkLease()
		return
	}
	if st.Primary == n.id && n.leaseToken == st.Token && st.Token != 0 && n.now >= n.nextRenew {
		if _, busy := n.inflight[OpRenew]; !busy {
			n.nextRenew = n.now + n.cfg.Lease.RenewInterval
			n.renewSent = n.now
			n.op(LockOp{Kind: OpRenew, Token: st.Token})
		}
	}
	n.checkLease()
}

func (n *LockNode) checkLease() {
	valid := n.LeaseValid()
	switch {
	case valid && !n.leaseHeld:
		n.leaseHeld = true
		n.act(Action{Kind: ActLeaseAcquired, Token: n.leaseToken, Reason: fmt.Sprintf("until %v", n.leaseExpiry)})
		n.event("lease-acquired", fmt.Sprintf("token %d until %v", n.leaseToken, n.leaseExpiry))
	case !valid && n.leaseHeld:
		n.leaseHeld = false
		n.act(Action{Kind: ActFence, Token: n.leaseToken, Reason: "lease expired"})
		n.act(Action{Kind: ActLeaseLost, Token: n.leaseToken, Reason: "lease expired"})
		n.event("lease-lost", fmt.Sprintf("token %d expired at %v", n.leaseToken, n.leaseExpiry))
	}
}

// Release gives up the primary lease: Fence first, then the release is
// recorded in the database (retried every renew interval until the row
// shows it).
func (n *LockNode) Release(reason string) {
	st := n.state
	if !st.Bootstrapped || st.Primary != n.id || st.Token == 0 || n.released == st.Token {
		return
	}
	tok := st.Token
	n.released = tok
	n.leaseToken, n.leaseExpiry = 0, 0
	n.act(Action{Kind: ActFence, Token: tok, Reason: "released: " + reason})
	if n.leaseHeld {
		n.leaseHeld = false
		n.act(Action{Kind: ActLeaseLost, Token: tok, Reason: "released"})
	}
	n.event("release", fmt.Sprintf("token %d: %s", tok, reason))
	n.nextRenew = n.now
	n.primaryDuties()
	n.drainLocal()
}

// ReleaseAfterStop is Release after a planned step-down; final goes to
// every member over the mesh so that the coordinator promotes only a
// replica beyond it.
func (n *LockNode) ReleaseAfterStop(reason string, final Position) {
	if n.state.Primary == n.id && n.released != n.state.Token {
		n.releaseFinal = &final
	}
	n.Release(reason)
}

// announceRelease tells every member that the database recorded this
// node's release (and, after a clean stop, its final position).
func (n *LockNode) announceRelease() {
	for _, id := range n.members() {
		if id == n.id {
			continue
		}
		m := Message{Type: MsgRelease, To: id, Token: n.released}
		if n.releaseFinal != nil {
			f := *n.releaseFinal
			m.Final = &f
		}
		n.send(m)
	}
}

func (n *LockNode) members() []uint64 {
	return sortedUnique(append(slices.Clone(n.state.Voters), n.state.Learners...))
}

// HasReady reports whether Ready would return work.
func (n *LockNode) HasReady() bool {
	return len(n.ops) > 0 || len(n.msgs) > 0 || len(n.actions) > 0 || len(n.events) > 0 || n.stateChanged
}

// Ready returns the pending work: Actions (fence first, as with Node),
// Messages, Ops to run, Events, the State when it changed.
func (n *LockNode) Ready() Ready {
	rd := Ready{Messages: n.msgs, Actions: n.actions, Events: n.events, Ops: n.ops}
	if n.stateChanged {
		st := n.state.Clone()
		rd.State = &st
	}
	n.msgs, n.actions, n.events, n.ops, n.stateChanged = nil, nil, nil, nil, false
	return rd
}

// Advance is a no-op (nothing to persist locally: the database is the
// durable state); it exists for the shared Backend interface.
func (n *LockNode) Advance() {}

// --- proposals: transactions on the database, asynchronous like raft's ---

func (n *LockNode) propose(c Command) error {
	if c.Version == 0 {
		c.Version = CommandVersion
	}
	if err := c.validate(); err != nil {
		return err
	}
	if !n.rowKnown {
		return errors.New("election: the coordination database has not been read yet")
	}
	n.op(LockOp{Kind: OpApply, Command: &c})
	return nil
}

// Propose applies a command in the coordination database.
func (n *LockNode) Propose(c Command) error { return n.propose(c) }

// ProposeBootstrap names the cluster's first primary (inserts the row).
func (n *LockNode) ProposeBootstrap(primary uint64) error {
	return n.propose(Command{Type: CmdBootstrap, Bootstrap: &BootstrapCmd{Primary: primary, Voters: sortedUnique([]uint64{primary, n.id}), At: n.now, Time: n.wallNow, Sync: n.cfg.Sync}})
}

// SetSync proposes the synchronous setup.
func (n *LockNode) SetSync(s SyncState) error { return n.propose(Command{Type: CmdSetSync, Sync: &s}) }

// SetMaintenance turns automatic failover off or on.
func (n *LockNode) SetMaintenance(on bool) error {
	return n.propose(Command{Type: CmdSetMaintenance, Maintenance: &MaintenanceCmd{On: on}})
}

// AddMember adds a node (voter up to MaxVoters, else learner).
func (n *LockNode) AddMember(id uint64) error {
	return n.propose(Command{Type: CmdAddVoter, Voter: &VoterCmd{ID: id}})
}

// RemoveMember removes a node.
func (n *LockNode) RemoveMember(id uint64) error {
	switch {
	case id == n.state.Primary:
		return fmt.Errorf("%w: node %d is the primary; switch over first", ErrRejected, id)
	case !slices.Contains(n.members(), id):
		return fmt.Errorf("%w: node %d is not a member", ErrRejected, id)
	}
	return n.propose(Command{Type: CmdRemoveVoter, Voter: &VoterCmd{ID: id}})
}

// RequestSwitchover proposes a planned switchover (as Node's).
func (n *LockNode) RequestSwitchover(to uint64, scheduledAt int64) error {
	st := &n.state
	if err := checkSwitchover(*st, n.members(), to); err != nil {
		return err
	}
	return n.propose(Command{Type: CmdSwitchover, Switchover: &SwitchoverCmd{From: st.Primary, To: to, At: n.now, ScheduledAt: scheduledAt}})
}

// RequestFailover proposes a manual failover (as Node's).
func (n *LockNode) RequestFailover(to uint64, allowDataLoss bool) error {
	st := &n.state
	if err := checkFailover(*st, n.members(), to); err != nil {
		return err
	}
	return n.propose(Command{Type: CmdFailover, Failover: &FailoverCmd{Token: st.Token, To: to, AllowDataLoss: allowDataLoss, At: n.now}})
}

// SetDetached detaches or re-attaches a replica.
func (n *LockNode) SetDetached(id uint64, on bool) error {
	if err := checkDetached(n.state, n.members(), id, on); err != nil {
		return err
	}
	return n.propose(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: id, On: on}})
}

// SetConfig changes the cluster-wide configuration overrides.
func (n *LockNode) SetConfig(set map[string]string, unset []string) error {
	return n.propose(Command{Type: CmdSetConfig, Config: &ConfigCmd{Set: set, Unset: unset}})
}

// CancelFailover withdraws a pending manual failover.
func (n *LockNode) CancelFailover() error {
	return n.propose(Command{Type: CmdFailover, Failover: &FailoverCmd{Clear: true}})
}

// CancelSwitchover withdraws a pending switchover.
func (n *LockNode) CancelSwitchover() error {
	return n.propose(Command{Type: CmdSwitchover, Switchover: &SwitchoverCmd{Clear: true}})
}

// --- the coordinator ---

// ReportPrimaryFailed is the detector's verdict; only the lock holder
// acts on it (revoke, wait for the lease to end on the database's clock,
// choose, promote).
func (n *LockNode) ReportPrimaryFailed(reason string) {
	if !n.locked || !n.state.Bootstrapped {
		return
	}
	n.startFailover(n.state.Token, reason, false)
	n.drainLocal()
}

// ObservePrimary records that the primary named under token was seen
// (gossip) at pos; see ChooseInput.PrimaryLast.
func (n *LockNode) ObservePrimary(token uint64, pos Position) {
	n.primarySeen.observe(n.state, token, pos)
}

// FailoverPhase describes the coordinator's failover (or why none can
// happen), for the status API.
func (n *LockNode) FailoverPhase() string {
	if n.coord == nil {
		return ""
	}
	s := fmt.Sprintf("%s token=%d old=%d", n.coord.phase, n.coord.token, n.coord.old)
	if n.coord.waiting != "" && n.coord.phase == phaseCollecting {
		s += " (" + n.coord.waiting + ")"
	}
	return s
}

func (n *LockNode) manualFailover() *FailoverCmd {
	if mf := n.state.ManualFailover; mf != nil && mf.Token == n.state.Token {
		return mf
	}
	return nil
}

func (n *LockNode) startFailover(token uint64, reason string, released bool) {
	if token != n.state.Token || token == 0 {
		return
	}
	manual := n.manualFailover() != nil
	if n.state.Maintenance && !manual {
		return
	}
	if f := n.coord; f != nil && f.token == token {
		if released && !f.released {
			f.released = true
			n.event("failover", fmt.Sprintf("token %d: old primary released, no lease wait", token))
		}
		return
	}
	n.coord = &lockFailover{token: token, old: n.state.Primary, reason: reason, released: released, positions: map[uint64]Candidate{}, lastSend: -1, started: n.now, manual: manual}
	n.event("failover", fmt.Sprintf("token %d (primary %d): %s", token, n.state.Primary, reason))
}

// triggers starts a failover from what the row says: released, revoked
// by an earlier coordinator, the lease over on the database's clock, or
// an operator's manual failover.
func (n *LockNode) triggers() {
	st, row := n.state, n.row
	if !n.locked || !row.Exists || !st.Bootstrapped || st.Token == 0 || n.downSince != 0 {
		return
	}
	switch {
	case row.Released:
		n.startFailover(st.Token, n.releaseReason(), true)
	case row.Revoked >= st.Token:
		n.startFailover(st.Token, fmt.Sprintf("resuming: token %d is revoked", st.Token), false)
	case row.Remaining < 0 && n.now-n.upSince >= n.cfg.Lease.TTL:
		// After an outage of the database the primary could not renew
		// either: give it one TTL to do so before judging it failed
		// (this only delays a failover, it never makes one unsafe).
		n.startFailover(st.Token, fmt.Sprintf("primary %d's lease is over on the coordination database's clock (%v ago)", st.Primary, -row.Remaining), false)
	case n.manualFailover() != nil:
		mf := n.manualFailover()
		n.startFailover(st.Token, fmt.Sprintf("manual failover to %d", mf.To), false)
	}
	if f := n.coord; f != nil && n.manualFailover() != nil {
		f.manual = true
	}
}

// releaseReason is the history's reason for a failover after the
// primary released: a switchover's when one from it is pending (as Node).
func (n *LockNode) releaseReason() string {
	p := n.state.Primary
	if sw := n.state.Switchover; sw != nil && sw.From == p {
		return fmt.Sprintf("switchover from %d", p)
	}
	return fmt.Sprintf("primary %d released its lease", p)
}

func (n *LockNode) coordinate() {
	n.triggers()
	f := n.coord
	if f == nil {
		return
	}
	switch {
	case !n.locked:
		n.event("failover-abandoned", fmt.Sprintf("token %d: no longer holds the coordinator lock", f.token))
		n.coord = nil
		return
	case n.state.Token != f.token:
		n.event("failover-done", fmt.Sprintf("token %d → %d, primary %d", f.token, n.state.Token, n.state.Primary))
		n.coord = nil
		return
	case n.state.Maintenance && !f.manual:
		n.event("failover-abandoned", fmt.Sprintf("token %d: maintenance mode", f.token))
		n.coord = nil
		return
	}
	if n.row.Released {
		f.released = true
	}
	if f.phase == phaseRevoking {
		if f.released {
			f.phase = phaseCollecting
			n.event("failover", fmt.Sprintf("token %d: old primary released its lease; collecting positions", f.token))
		} else {
			n.op(LockOp{Kind: OpRevoke, Token: f.token})
			return
		}
	}
	if f.phase == phaseWaiting {
		if n.now < f.waitUntil && !f.released && n.row.Remaining >= 0 {
			return
		}
		f.phase, f.lastSend = phaseCollecting, -1
		clear(f.positions)
		n.event("failover", fmt.Sprintf("token %d: old lease over; collecting positions", f.token))
	}
	if f.phase == phaseCollecting {
		n.collect(f)
		return
	}
	if f.phase == phaseProposed && n.now-f.asked >= 2*n.cfg.PositionTimeout {
		if n.promoting == 0 {
			f.phase, f.lastSend = phaseCollecting, -1
			clear(f.positions)
			n.event("failover", fmt.Sprintf("token %d: promotion of %d not applied; choosing again", f.token, f.proposed))
		}
	}
}

func (n *LockNode) collect(f *lockFailover) {
	members := n.members()
	if f.lastSend < 0 {
		if n.now < f.retryAt {
			return
		}
		f.lastSend, f.asked = n.now, n.now
		// The old primary is asked too: if it is back, fenced with its
		// history intact, it may be promoted again (Choose, reclaim).
		for _, id := range members {
			n.send(Message{Type: MsgPositionRequest, To: id, Token: f.token})
		}
		return
	}
	all := true
	for _, id := range members {
		if _, ok := f.positions[id]; !ok && id != f.old {
			all = false
		}
	}
	if !all && n.now-f.asked < n.cfg.PositionTimeout {
		return
	}
	cands := make([]Candidate, 0, len(f.positions))
	for _, c := range f.positions {
		c.Detached = c.Detached || slices.Contains(n.state.Detached, c.ID)
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b Candidate) int { return int(a.ID) - int(b.ID) })
	in := ChooseInput{Candidates: cands, Exclude: f.old, Sync: n.syncFor(f.old), MaximumLagOnFailover: n.maximumLag(), PrimaryLast: n.primarySeen.last(f.token)}
	if r := n.row; r.Exists && r.State.Token == f.token && r.Final != nil {
		final := *r.Final // recorded with the release, in the same statement
		in.After = &final
	} else if final, ok := n.finals[f.token]; ok {
		in.After = &final
	}
	if sw := n.state.Switchover; sw != nil && sw.From == f.old && sw.To != 0 && n.now-f.started < 4*n.cfg.PositionTimeout {
		in.Target = sw.To
	}
	if mf := n.manualFailover(); mf != nil {
		in.Target = mf.To
		if mf.AllowDataLoss {
			in.Sync, in.MaximumLagOnFailover = SyncState{}, 0
		} else {
			in.RequireBest = true
		}
	}
	ch := Choose(in)
	if !ch.OK {
		if ch.Reason != f.waiting {
			f.waiting = ch.Reason
			n.event("failover-waiting", fmt.Sprintf("token %d: %s", f.token, ch.Reason))
		}
		retry := n.cfg.PositionTimeout
		if in.After != nil {
			retry = min(retry, 2*n.cfg.TickInterval)
		}
		f.lastSend, f.retryAt = -1, n.now+retry
		clear(f.positions)
		return
	}
	c := ch.Candidate
	cmd := Command{Type: CmdPromote, Version: CommandVersion, Promote: &PromoteCmd{
		Token: f.token + 1, New: c.ID, Old: f.old, Reason: f.reason,
		Timeline: c.Position.Timeline, LSN: c.Position.LSN, At: n.now, Time: n.wallNow,
		Reclaim: c.ID == f.old,
	}}
	n.op(LockOp{Kind: OpApply, Command: &cmd})
	f.phase, f.proposed, f.asked = phaseProposed, c.ID, n.now
	n.event("failover", fmt.Sprintf("token %d: promoting node %d under token %d: %s", f.token, c.ID, f.token+1, ch.Reason))
}

func (n *LockNode) syncFor(old uint64) SyncState { return syncFor(n.state, n.members(), old) }

func (n *LockNode) maximumLag() uint64 { return maximumLag(n.state, n.cfg.MaximumLagOnFailover) }
