package election

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Config configures a Node.
type Config struct {
	// ID is this node's id (the mesh NodeID), non-zero.
	ID uint64
	// Peers are the initial voters of a brand-new group (every founding
	// node passes the same list). Empty when restarting or joining.
	Peers []uint64
	// ElectionTick and HeartbeatTick are raft's, in ticks. Defaults 10, 1.
	ElectionTick, HeartbeatTick int
	// TickInterval is the logical time one Tick stands for. Default 100ms.
	TickInterval time.Duration
	// Start is the logical time of the node's first tick (the daemon's
	// monotonic clock at start; the harness's global clock).
	Start time.Duration
	// Lease tunes the primary lease.
	Lease LeaseConfig
	// PositionTimeout: how long the coordinator waits for positions before
	// choosing among the answers it has. Default 2 × Lease.RenewInterval.
	PositionTimeout time.Duration
	// Sync is the synchronous replication setup this node proposes when
	// it bootstraps the cluster (nil: asynchronous). Afterwards the
	// replicated ClusterState.Sync is authoritative: change it with
	// SetSync (synchronous_mode is a cluster-wide dynamic setting, and
	// every coordinator must apply the same rule at failover).
	Sync *SyncState
	// MaximumLagOnFailover (bytes): the coordinator does not promote a
	// replica further than this behind the most advanced one. 0: no check.
	MaximumLagOnFailover uint64
	// Restart is the persisted state of a restarting node (nil: fresh).
	Restart *Persisted
	// Logger receives raft's own log; nil discards it.
	Logger raft.Logger
}

// Persisted is what a node finds on disk after a restart: exactly what
// earlier Readys asked it to persist.
type Persisted struct {
	HardState *pb.HardState
	Snapshot  *pb.Snapshot
	Entries   []*pb.Entry
	Revoked   uint64
}

func (c *Config) setDefaults() {
	if c.ElectionTick == 0 {
		c.ElectionTick = 10
	}
	if c.HeartbeatTick == 0 {
		c.HeartbeatTick = 1
	}
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.Lease == (LeaseConfig{}) {
		c.Lease = DefaultLeaseConfig()
	}
	if c.PositionTimeout == 0 {
		c.PositionTimeout = 2 * c.Lease.RenewInterval
	}
}

// Local is this node's own PostgreSQL facts, as last measured by the daemon.
type Local struct {
	Healthy    bool
	Position   Position
	Priority   int
	NoFailover bool
	Detached   bool
	// FencedPrimary: this node is the primary named under the current
	// token, fenced (its PostgreSQL stopped, not writable), and its data
	// directory still holds that token's whole history (not rewound or
	// replaced). See Choose's reclaim rule.
	FencedPrimary bool
}

// Node is one daemon's participant in the election: raft replica, lease
// grantor (if a voter), lease holder (if primary) and coordinator (if raft
// leader). Like raft.RawNode it is not safe for concurrent use and does no
// I/O: the daemon calls Tick, Step, Ready and Advance from one loop.
//
// Randomness: raft draws its election jitter from its own random source,
// which cannot be injected; a simulator should record the resulting trace
// (who campaigned when) rather than expect to replay it bit for bit.
// Everything else in Node is a function of its inputs.
type Node struct {
	cfg     Config
	id      uint64
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	now     time.Duration

	state        ClusterState
	stateChanged bool
	local        Local

	grantor        *Grantor
	revokedChanged bool
	holder         *Holder
	nextRenew      time.Duration
	leaseHeld      bool
	// promoted is the token under which this node was last told to be
	// primary (0: it is not primary).
	promoted uint64
	// following is the token of the last Follow action.
	following uint64
	// released is the token this node released as primary: it stays
	// released (no lease requests under it) until a newer token names
	// this node. Not persisted: a restarted node that finds itself primary
	// under a released token asks again, is refused as revoked by a
	// quorum, and releases again (see onRevokedRefusal).
	released uint64
	// releaseFinal is the final WAL position announced with the release
	// (after a clean stop for a switchover); nil: unknown.
	releaseFinal *Position
	// steppingDown is the token for which ActStepDown was issued.
	steppingDown uint64
	// wallNow is the daemon's wall clock (Unix ms) as last given to
	// SetWallNow; it only labels commands (PromoteCmd.Time).
	wallNow int64

	lastLeaseRequest map[uint64]time.Duration

	coord *failover
	// primarySeen: where the current primary was last seen (ObservePrimary).
	primarySeen primaryWatch
	// suppressed is the last failover start maintenance mode suppressed
	// (token, reason), so a repeated one is not logged again.
	suppressed [2]any

	rd      *raft.Ready
	msgs    []Message
	local_  []Message
	applied []Applied
	actions []Action
	events  []Event
}

// ErrConfig wraps invalid node configurations.
var ErrConfig = errors.New("election: invalid config")

// NewNode creates a node; with cfg.Restart it resumes from persisted state.
func NewNode(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.ID == 0 {
		return nil, fmt.Errorf("%w: node id 0", ErrConfig)
	}
	if err := cfg.Lease.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Peers) > MaxVoters {
		return nil, fmt.Errorf("%w: %d initial voters, at most %d", ErrConfig, len(cfg.Peers), MaxVoters)
	}
	if cfg.Lease.RenewInterval < cfg.TickInterval {
		return nil, fmt.Errorf("%w: renew interval %v below the tick interval %v", ErrConfig, cfg.Lease.RenewInterval, cfg.TickInterval)
	}
	n := &Node{cfg: cfg, id: cfg.ID, storage: raft.NewMemoryStorage(), now: cfg.Start, lastLeaseRequest: map[uint64]time.Duration{}}
	var applied uint64
	var revoked uint64
	if p := cfg.Restart; p != nil {
		if p.Snapshot != nil && !raft.IsEmptySnap(p.Snapshot) {
			if err := n.storage.ApplySnapshot(p.Snapshot); err != nil {
				return nil, fmt.Errorf("election: restore snapshot: %w", err)
			}
			st, err := RestoreClusterState(p.Snapshot.GetData())
			if err != nil {
				return nil, err
			}
			n.state = st
			applied = p.Snapshot.GetMetadata().GetIndex()
		}
		if p.HardState != nil {
			if err := n.storage.SetHardState(p.HardState); err != nil {
				return nil, fmt.Errorf("election: restore hard state: %w", err)
			}
		}
		if err := n.storage.Append(p.Entries); err != nil {
			return nil, fmt.Errorf("election: restore entries: %w", err)
		}
		revoked = p.Revoked
	}
	logger := cfg.Logger
	if logger == nil {
		logger = discardLogger{}
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTick,
		HeartbeatTick:   cfg.HeartbeatTick,
		Storage:         n.storage,
		Applied:         applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		PreVote:         true,
		CheckQuorum:     true,
		Logger:          logger,
	})
	if err != nil {
		return nil, fmt.Errorf("election: raft: %w", err)
	}
	n.rn = rn
	if cfg.Restart == nil && len(cfg.Peers) > 0 {
		peers := make([]raft.Peer, 0, len(cfg.Peers))
		for _, id := range sortedUnique(cfg.Peers) {
			peers = append(peers, raft.Peer{ID: id})
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("election: raft bootstrap: %w", err)
		}
	}
	n.grantor = NewGrantor(cfg.Lease, n.now, revoked, cfg.Restart != nil)
	n.holder = NewHolder(cfg.Lease, cfg.ID)
	n.event("start", fmt.Sprintf("at %v, revoked token %d", n.now, revoked))
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() uint64 { return n.id }

// Now returns the node's logical time.
func (n *Node) Now() time.Duration { return n.now }

// State returns a copy of the applied cluster state.
func (n *Node) State() ClusterState { return n.state.Clone() }

// Members are the raft group's voters and learners.
func (n *Node) Members() []uint64 { return n.members() }

// IsLeader reports whether this node is the raft leader (the coordinator).
func (n *Node) IsLeader() bool { return n.rn.BasicStatus().RaftState == raft.StateLeader }

// Leader returns the raft leader this node knows of (0: none).
func (n *Node) Leader() uint64 { return n.rn.BasicStatus().Lead }

// LeaseValid reports whether this node holds a valid primary lease now.
func (n *Node) LeaseValid() bool { return n.holder.Valid(n.now) }

// LeaseExpiry is the end of this node's lease (logical time; 0 if none).
func (n *Node) LeaseExpiry() time.Duration { return n.holder.Expiry() }

// LastLeaseRequest reports when this node last received a lease request
// from id (input for the detector).
func (n *Node) LastLeaseRequest(id uint64) (time.Duration, bool) {
	t, ok := n.lastLeaseRequest[id]
	return t, ok
}

// SetLocal records this node's PostgreSQL facts (answers to position
// requests).
func (n *Node) SetLocal(l Local) { n.local = l }

// SetWallNow gives the node the daemon's wall clock (Unix milliseconds).
// It is only recorded in the commands this node proposes (Time of
// Bootstrap and Promote, hence of FailoverRecord), never used to decide
// anything; call it before Tick. The package never reads a clock itself.
func (n *Node) SetWallNow(unixMS int64) { n.wallNow = unixMS }

// Campaign makes this node campaign for raft leadership.
func (n *Node) Campaign() error { return n.rn.Campaign() }

// Tick advances the logical clock by one TickInterval.
func (n *Node) Tick() {
	n.now += n.cfg.TickInterval
	n.rn.Tick()
	n.primaryDuties()
	n.coordinate()
	n.drainLocal()
}

// Step feeds a message received from another node. A malformed or
// unexpected message is dropped with an error; it never panics.
func (n *Node) Step(m Message) error {
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

func (n *Node) handle(m Message) error {
	switch m.Type {
	case MsgRaft:
		if m.Raft.GetFrom() != m.From || m.Raft.GetTo() != n.id {
			return fmt.Errorf("election: raft message addressing %d->%d does not match %d->%d", m.Raft.GetFrom(), m.Raft.GetTo(), m.From, m.To)
		}
		if err := n.rn.Step(m.Raft); err != nil {
			return fmt.Errorf("election: raft step: %w", err)
		}
	case MsgLeaseRequest:
		n.lastLeaseRequest[m.From] = n.now
		if !n.state.IsVoter(n.id) {
			return nil
		}
		ok, why := n.grantor.Grant(n.state, m.From, m.Token, n.now)
		// Revoked tells the holder that this refusal is forever: this
		// voter has durably revoked the token.
		revoked := !ok && m.Token <= n.grantor.Revoked()
		n.send(Message{Type: MsgLeaseGrant, To: m.From, Token: m.Token, Seq: m.Seq, Granted: ok, Reason: why, Revoked: revoked})
	case MsgLeaseGrant:
		switch {
		case m.Granted:
			if n.holder.OnGrant(m.From, m.Token, m.Seq, n.now) {
				n.checkLease()
			}
		case m.Revoked:
			n.onRevokedRefusal(m)
		}
	case MsgRevoke:
		if !n.state.IsVoter(n.id) {
			return nil
		}
		// Only the coordinator this node follows may revoke: a deposed
		// leader with a stale view must not erode a healthy primary.
		if m.From != n.id && m.From != n.Leader() {
			return fmt.Errorf("election: revoke from %d, but the leader is %d", m.From, n.Leader())
		}
		rem, changed := n.grantor.Revoke(m.Token, n.now)
		if changed {
			n.revokedChanged = true
			n.event("revoked", fmt.Sprintf("token %d at the request of %d; grants bind for %v more", m.Token, m.From, rem))
		}
		n.send(Message{Type: MsgRevoked, To: m.From, Token: m.Token, Remaining: rem})
	case MsgRevoked:
		n.onRevoked(m)
	case MsgRelease:
		if m.From != n.state.Primary || m.Token != n.state.Token {
			return nil
		}
		if n.state.IsVoter(n.id) && n.grantor.Release(m.Token) {
			n.revokedChanged = true
			n.event("released", fmt.Sprintf("primary %d released token %d", m.From, m.Token))
		}
		if n.IsLeader() {
			reason := fmt.Sprintf("primary %d released its lease", m.From)
			if sw := n.state.Switchover; sw != nil && sw.From == m.From {
				reason = fmt.Sprintf("switchover from %d", m.From)
			}
			n.startFailover(m.Token, reason, true)
			if f := n.coord; f != nil && f.token == m.Token && m.Final != nil && f.final == nil {
				final := *m.Final
				f.final = &final
			}
		}
	case MsgPositionRequest:
		c := candidateOf(n.id, n.local)
		n.send(Message{Type: MsgPosition, To: m.From, Token: m.Token, Candidate: &c})
	case MsgPosition:
		n.onPosition(m)
	}
	return nil
}

// send queues m; messages to self are handled locally.
func (n *Node) send(m Message) {
	m.From = n.id
	if m.To == n.id {
		n.local_ = append(n.local_, m)
		return
	}
	n.msgs = append(n.msgs, m)
}

func (n *Node) drainLocal() {
	for i := 0; i < len(n.local_); i++ {
		_ = n.handle(n.local_[i]) // self-addressed messages are well formed
	}
	n.local_ = n.local_[:0]
}

func (n *Node) event(kind, reason string) {
	n.events = append(n.events, Event{At: n.now, Node: n.id, Kind: kind, Reason: reason})
}

func (n *Node) act(a Action) { n.actions = append(n.actions, a) }

// Propose proposes a command (Bootstrap, Promote, SetMaintenance,
// Switchover). Membership changes go through AddMember/RemoveMember.
func (n *Node) Propose(c Command) error {
	if c.Type == CmdAddVoter || c.Type == CmdRemoveVoter {
		return fmt.Errorf("%w: %s goes through AddMember/RemoveMember", ErrRejected, c.Type)
	}
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if err := n.rn.Propose(b); err != nil {
		return fmt.Errorf("election: propose %s: %w", c.Type, err)
	}
	return nil
}

// ProposeBootstrap names the cluster's first primary.
func (n *Node) ProposeBootstrap(primary uint64) error {
	return n.Propose(Command{Type: CmdBootstrap, Bootstrap: &BootstrapCmd{Primary: primary, Voters: n.state.Voters, At: n.now, Time: n.wallNow, Sync: n.cfg.Sync}})
}

// SetSync proposes the cluster's synchronous replication setup (what the
// primary's synchronous_mode and synchronous_standby_names say). Propose
// a stricter setting only once the primary enforces it and a looser one
// only after it: at failover the coordinator trusts the applied one.
func (n *Node) SetSync(s SyncState) error {
	return n.Propose(Command{Type: CmdSetSync, Sync: &s})
}

// SetMaintenance turns automatic failover off or on.
func (n *Node) SetMaintenance(on bool) error {
	return n.Propose(Command{Type: CmdSetMaintenance, Maintenance: &MaintenanceCmd{On: on}})
}

// AddMember adds a node: as a voter while there are fewer than MaxVoters,
// else as a learner.
func (n *Node) AddMember(id uint64) error {
	t := pb.ConfChangeAddNode
	if len(n.state.Voters) >= MaxVoters {
		t = pb.ConfChangeAddLearnerNode
	}
	return n.proposeConf(t, id, CmdAddVoter)
}

// RemoveMember removes a node.
func (n *Node) RemoveMember(id uint64) error {
	switch {
	case id == n.state.Primary:
		return fmt.Errorf("%w: node %d is the primary; switch over first", ErrRejected, id)
	case !slices.Contains(n.members(), id):
		return fmt.Errorf("%w: node %d is not a member", ErrRejected, id)
	case len(n.state.Voters) == 1 && n.state.Voters[0] == id:
		return fmt.Errorf("%w: node %d is the last voter", ErrRejected, id)
	}
	return n.proposeConf(pb.ConfChangeRemoveNode, id, CmdRemoveVoter)
}

func (n *Node) proposeConf(t pb.ConfChangeType, id uint64, ct CommandType) error {
	ctx, err := Command{Type: ct, Voter: &VoterCmd{ID: id}}.Encode()
	if err != nil {
		return err
	}
	if err := n.rn.ProposeConfChange(&pb.ConfChange{Type: t.Enum(), NodeId: new(id), Context: ctx}); err != nil {
		return fmt.Errorf("election: propose conf change: %w", err)
	}
	return nil
}

// Release gives up the primary lease (graceful stop, local PostgreSQL
// failure the daemon will not fix in place, or a token a quorum of voters
// revoked). The Fence action comes first in the Ready, and the Release
// messages go out only after it is done.
//
// A released token stays released on this node: no lease is asked for
// under it again, and the node re-announces the release every
// RenewInterval (Release messages can be lost, and the coordinator they
// reach may lose leadership) until a newer token is applied. Calling
// Release again only re-announces it.
func (n *Node) Release(reason string) {
	st := n.state
	if !st.Bootstrapped || st.Primary != n.id || st.Token == 0 {
		return
	}
	tok := st.Token
	if n.released != tok {
		n.released = tok
		n.holder.Stop()
		n.act(Action{Kind: ActFence, Token: tok, Reason: "released: " + reason})
		if n.leaseHeld {
			n.leaseHeld = false
			n.act(Action{Kind: ActLeaseLost, Token: tok, Reason: "released"})
		}
		n.event("release", fmt.Sprintf("token %d: %s", tok, reason))
	}
	n.announceRelease(reason)
	n.drainLocal()
}

func (n *Node) announceRelease(reason string) {
	n.nextRenew = n.now + n.cfg.Lease.RenewInterval
	for _, v := range n.state.Voters {
		m := Message{Type: MsgRelease, To: v, Token: n.released, Reason: reason}
		if n.releaseFinal != nil {
			f := *n.releaseFinal
			m.Final = &f
		}
		n.send(m)
	}
}

// ReleaseAfterStop is Release after a planned step-down (ActStepDown): the
// daemon stopped PostgreSQL cleanly, so the replicas that were streaming
// received every WAL record up to final (the shutdown checkpoint's
// location). The coordinator then promotes only a replica beyond final:
// a switchover loses nothing, whatever the synchronous mode.
func (n *Node) ReleaseAfterStop(reason string, final Position) {
	if n.state.Primary == n.id && n.released != n.state.Token {
		n.releaseFinal = &final
	}
	n.Release(reason)
}

// RequestSwitchover proposes a planned switchover from the current primary
// to node to (0: the coordinator chooses the best replica). The primary
// steps down once it applies it (ActStepDown), or at scheduledAt (Unix
// ms; 0: now).
func (n *Node) RequestSwitchover(to uint64, scheduledAt int64) error {
	st := &n.state
	if err := checkSwitchover(*st, n.members(), to); err != nil {
		return err
	}
	return n.Propose(Command{Type: CmdSwitchover, Switchover: &SwitchoverCmd{From: st.Primary, To: to, At: n.now, ScheduledAt: scheduledAt}})
}

// RequestFailover proposes a manual failover of the current primary to
// node to. With allowDataLoss the synchronous bar and the lag limit do not
// apply to it.
func (n *Node) RequestFailover(to uint64, allowDataLoss bool) error {
	st := &n.state
	if err := checkFailover(*st, n.members(), to); err != nil {
		return err
	}
	return n.Propose(Command{Type: CmdFailover, Failover: &FailoverCmd{Token: st.Token, To: to, AllowDataLoss: allowDataLoss, At: n.now}})
}

// SetDetached detaches replica id from streaming (on) or re-attaches it.
func (n *Node) SetDetached(id uint64, on bool) error {
	if err := checkDetached(n.state, n.members(), id, on); err != nil {
		return err
	}
	return n.Propose(Command{Type: CmdSetDetached, Detached: &DetachedCmd{Node: id, On: on}})
}

// SetConfig changes the cluster-wide configuration overrides (validated by
// the caller).
func (n *Node) SetConfig(set map[string]string, unset []string) error {
	return n.Propose(Command{Type: CmdSetConfig, Config: &ConfigCmd{Set: set, Unset: unset}})
}

// CancelFailover withdraws a pending manual failover.
func (n *Node) CancelFailover() error {
	return n.Propose(Command{Type: CmdFailover, Failover: &FailoverCmd{Clear: true}})
}

// CancelSwitchover withdraws a pending switchover (one whose primary has
// already stepped down goes on as a failover).
func (n *Node) CancelSwitchover() error {
	return n.Propose(Command{Type: CmdSwitchover, Switchover: &SwitchoverCmd{Clear: true}})
}

// onRevokedRefusal counts voters that refused a lease request because
// they revoked the token. Revocation is durable, so once a majority has
// refused this way the token can never be renewed: the holder gives it up
// at once (Release) instead of waiting for its lease to run out. This is
// what resumes a failover whose coordinator lost raft leadership after
// the revoke quorum: the Release reaches whoever leads now, which starts
// the failover again with no lease wait (see doc.go, "Resuming").
func (n *Node) onRevokedRefusal(m Message) {
	if n.state.Primary != n.id || m.Token != n.state.Token || n.released == m.Token {
		return
	}
	if n.holder.OnRevoked(m.From, m.Token) {
		n.Release(fmt.Sprintf("token %d revoked by a quorum of voters", m.Token))
	}
}

// primaryDuties renews the lease and watches its expiry.
// checkStepDown issues ActStepDown once a pending switchover names this
// primary and its time has come (by the wall clock SetWallNow gives).
func (n *Node) checkStepDown() {
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

func (n *Node) primaryDuties() {
	n.checkStepDown()
	if n.released != 0 && n.released == n.state.Token && n.state.Primary == n.id && n.now >= n.nextRenew {
		n.announceRelease("released earlier")
	}
	if n.holder.Token() == 0 || n.state.Primary != n.id || n.holder.Token() != n.state.Token {
		n.checkLease()
		return
	}
	if n.now >= n.nextRenew {
		n.nextRenew = n.now + n.cfg.Lease.RenewInterval
		seq := n.holder.Next(n.now)
		for _, v := range n.state.Voters {
			n.send(Message{Type: MsgLeaseRequest, To: v, Token: n.holder.Token(), Seq: seq})
		}
	}
	n.checkLease()
}

// checkLease emits LeaseAcquired / Fence+LeaseLost on transitions.
func (n *Node) checkLease() {
	valid := n.holder.Valid(n.now)
	switch {
	case valid && !n.leaseHeld:
		n.leaseHeld = true
		n.act(Action{Kind: ActLeaseAcquired, Token: n.holder.Token(), Reason: fmt.Sprintf("until %v", n.holder.Expiry())})
		n.event("lease-acquired", fmt.Sprintf("token %d until %v", n.holder.Token(), n.holder.Expiry()))
	case !valid && n.leaseHeld:
		n.leaseHeld = false
		n.act(Action{Kind: ActFence, Token: n.holder.Token(), Reason: "lease expired"})
		n.act(Action{Kind: ActLeaseLost, Token: n.holder.Token(), Reason: "lease expired"})
		n.event("lease-lost", fmt.Sprintf("token %d expired at %v", n.holder.Token(), n.holder.Expiry()))
	}
}

// HasReady reports whether Ready would return work.
func (n *Node) HasReady() bool {
	return n.rn.HasReady() || len(n.msgs) > 0 || len(n.applied) > 0 || len(n.actions) > 0 || len(n.events) > 0 || n.revokedChanged || n.stateChanged
}

// Ready returns the pending work; call Advance once it is handled.
func (n *Node) Ready() Ready {
	var rd Ready
	if n.rn.HasReady() {
		r := n.rn.Ready()
		n.rd = &r
		if !raft.IsEmptyHardState(r.HardState) {
			rd.HardState = r.HardState
		}
		if !raft.IsEmptySnap(r.Snapshot) {
			rd.Snapshot = r.Snapshot
			if err := n.storage.ApplySnapshot(r.Snapshot); err == nil {
				if st, err := RestoreClusterState(r.Snapshot.GetData()); err == nil {
					n.state, n.stateChanged = st, true
				} else {
					n.event("error", err.Error())
				}
			}
		}
		rd.Entries = r.Entries
		rd.MustSync = r.MustSync
		// The in-memory log mirrors what the daemon persists.
		if err := n.storage.Append(r.Entries); err != nil {
			n.event("error", fmt.Sprintf("append: %v", err))
		}
		if rd.HardState != nil {
			_ = n.storage.SetHardState(rd.HardState)
		}
		for _, m := range r.Messages {
			n.msgs = append(n.msgs, Message{Type: MsgRaft, From: n.id, To: m.GetTo(), Raft: m})
		}
		for _, e := range r.CommittedEntries {
			n.applyEntry(e)
		}
		n.afterApply()
		n.coordinate()
		n.drainLocal()
	}
	rd.Revoked, rd.RevokedChanged = n.grantor.Revoked(), n.revokedChanged
	rd.Messages, rd.Applied, rd.Actions, rd.Events = n.msgs, n.applied, n.actions, n.events
	if n.stateChanged {
		st := n.state.Clone()
		rd.State = &st
	}
	n.msgs, n.applied, n.actions, n.events = nil, nil, nil, nil
	n.revokedChanged, n.stateChanged = false, false
	return rd
}

// Advance tells the node the last Ready was handled.
func (n *Node) Advance() {
	if n.rd != nil {
		n.rn.Advance(*n.rd)
		n.rd = nil
	}
}

func (n *Node) applyEntry(e *pb.Entry) {
	switch e.GetType() {
	case pb.EntryNormal:
		if len(e.GetData()) == 0 {
			return // a new leader's empty entry
		}
		c, err := DecodeCommand(e.GetData())
		if err == nil {
			err = n.state.Apply(c)
		}
		if err == nil {
			n.stateChanged = true
		} else {
			n.event("rejected", fmt.Sprintf("entry %d: %v", e.GetIndex(), err))
		}
		n.applied = append(n.applied, Applied{Index: e.GetIndex(), Command: c, Err: err})
	case pb.EntryConfChange:
		cc := &pb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err != nil {
			n.event("rejected", fmt.Sprintf("conf change %d: %v", e.GetIndex(), err))
			return
		}
		if cc.GetType() == pb.ConfChangeAddNode && !slices.Contains(n.state.Voters, cc.GetNodeId()) && len(n.state.Voters) >= MaxVoters {
			// Every replica makes the same substitution at the same index.
			cc.Type = pb.ConfChangeAddLearnerNode.Enum()
		}
		cs := n.rn.ApplyConfChange(cc)
		n.state.setMembership(cs.GetVoters(), cs.GetLearners())
		switch cc.GetType() {
		case pb.ConfChangeRemoveNode:
			// A tombstone: the coordinator does not add the node back
			// when it shows up in the mesh again; add-node does.
			n.state.Removed = sortedUnique(append(n.state.Removed, cc.GetNodeId()))
		case pb.ConfChangeAddNode, pb.ConfChangeAddLearnerNode:
			n.state.Removed = slices.DeleteFunc(n.state.Removed, func(id uint64) bool { return id == cc.GetNodeId() })
		}
		n.stateChanged = true
		n.event("membership", fmt.Sprintf("%s %d: voters %v learners %v", cc.GetType(), cc.GetNodeId(), n.state.Voters, n.state.Learners))
	case pb.EntryConfChangeV2:
		n.event("rejected", fmt.Sprintf("entry %d: joint configuration changes are not used", e.GetIndex()))
	}
}

// afterApply turns the applied state into actions for this node.
func (n *Node) afterApply() {
	st := n.state
	if !st.Bootstrapped {
		return
	}
	if st.Primary == n.id && n.promoted != st.Token {
		n.promoted = st.Token
		n.holder.Start(st.Token, st.Voters)
		n.nextRenew = n.now
		n.act(Action{Kind: ActPromote, Token: st.Token, Reason: lastReason(st)})
		n.event("promote", fmt.Sprintf("this node is primary under token %d", st.Token))
		n.primaryDuties()
		return
	}
	if st.Primary == n.id {
		if n.released != st.Token {
			n.holder.Start(st.Token, st.Voters) // voter set may have changed
		}
		n.checkStepDown()
		return
	}
	if n.promoted != 0 {
		old := n.promoted
		n.promoted = 0
		n.holder.Stop()
		n.leaseHeld = false
		n.act(Action{Kind: ActDemote, Token: st.Token, NewPrimary: st.Primary, Reason: fmt.Sprintf("token %d supersedes ours (%d)", st.Token, old)})
		n.event("demote", fmt.Sprintf("token %d names node %d", st.Token, st.Primary))
	}
	if n.following != st.Token {
		n.following = st.Token
		n.act(Action{Kind: ActFollow, Token: st.Token, NewPrimary: st.Primary})
	}
}

func lastReason(st ClusterState) string {
	if len(st.History) == 0 {
		return ""
	}
	return st.History[len(st.History)-1].Reason
}

// discardLogger drops raft's log output but keeps its fatal semantics.
type discardLogger struct{}

func (discardLogger) Debug(...any)              {}
func (discardLogger) Debugf(string, ...any)     {}
func (discardLogger) Error(...any)              {}
func (discardLogger) Errorf(string, ...any)     {}
func (discardLogger) Info(...any)               {}
func (discardLogger) Infof(string, ...any)      {}
func (discardLogger) Warning(...any)            {}
func (discardLogger) Warningf(string, ...any)   {}
func (discardLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (discardLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
