package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossiper is the part of *memberlist.Memberlist the mesh uses after
// creation. Keeping it narrow keeps memberlist's API out of the rest of
// the package. Members and LocalNode are deliberately absent: they return
// pointers to nodes memberlist keeps rewriting under its own lock, so
// member addresses come from the view (copied in event callbacks).
type gossiper interface {
	Join(seeds []string) (int, error)
	SendReliable(to *memberlist.Node, msg []byte) error
	UpdateNode(timeout time.Duration) error
	Leave(timeout time.Duration) error
	Shutdown() error
	GetHealthScore() int
}

// metaUpdateTimeout bounds how long re-advertising node metadata waits
// for the alive message to go out; Shutdown waits for it too.
const metaUpdateTimeout = time.Second

// Errors of the messaging API.
var (
	ErrUnknownMember = errors.New("mesh: unknown or failed member")
	ErrShutdown      = errors.New("mesh: shut down")
)

// Handler receives the payload of a message of a registered kind. It runs
// on memberlist's receive path (the UDP loop or a TCP stream goroutine):
// it must not block, and it owns payload (a copy). memberlist does not
// tell who sent a message; put the sender in the payload if it matters.
type Handler func(payload []byte)

// Mesh is one daemon's membership in the cluster: the memberlist instance,
// its delegates and the goroutines that re-join seeds and refresh the
// local state. All methods are safe for concurrent use.
type Mesh struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	ml        gossiper
	queue     *memberlist.TransmitLimitedQueue
	localAddr string
	self      selfAddrs

	mu     sync.Mutex // guards view and warned; never held while calling memberlist
	view   *view
	warned map[string]bool

	// live mirrors view.liveCount for the broadcast queue's NumNodes,
	// which memberlist calls on its hot path.
	live atomic.Int64

	subMu   sync.Mutex
	subs    map[uint64]chan struct{}
	nextSub uint64

	handlerMu sync.RWMutex
	handlers  map[byte]Handler

	// keyring is memberlist's gossip keyring (nil: plaintext); keyMu
	// serializes changes and their saving (see keyring.go).
	keyring *memberlist.Keyring
	keyMu   sync.Mutex

	stats        counters
	lastDropWarn atomic.Int64 // Unix nanoseconds of the last drop warning

	metaKick chan struct{}

	loopMu  sync.Mutex
	started bool
	stopped bool
	stop    chan struct{}
	wg      sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, creates the memberlist and binds its listeners. It
// does not contact anyone: Start joins the seeds in the background.
func New(cfg Config) (*Mesh, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Mesh{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		warned:   make(map[string]bool),
		subs:     make(map[uint64]chan struct{}),
		handlers: make(map[byte]Handler),
		metaKick: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	now := m.now()
	m.view = newView(cfg.NodeName, cfg.ClusterName, now.UnixNano(), now)
	m.view.local.NodeID = cfg.NodeID
	m.view.local.APIURL = cfg.APIURL
	m.live.Store(1)

	bridge := &logBridge{log: m.log, onMessage: func(level, msg string) {
		if name, ok := suspectedNode(level, msg); ok {
			m.onSuspect(name)
		}
	}}
	kr, err := m.newKeyring()
	if err != nil {
		return nil, err
	}
	m.keyring = kr
	mc := cfg.memberlistConfig(m, bridge)
	m.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(m.live.Load()) },
		RetransmitMult: mc.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("mesh: create memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	m.ml = ml
	// Nothing can have re-advertised us yet, so reading the local node
	// here does not race with memberlist.
	local := ml.LocalNode()
	m.localAddr = local.Address()
	m.self = newSelfAddrs(net.ParseIP(cfg.BindAddr), mc.BindPort, local.Addr, int(local.Port))

	bindIP := net.ParseIP(cfg.BindAddr)
	if kr == nil && !bindIP.IsLoopback() {
		m.log.Warn("gossip is not encrypted on a non-loopback address; set an encryption key",
			"bind", cfg.BindAddr)
	}
	m.log.Info("mesh listening", "node", cfg.NodeName, "cluster", cfg.ClusterName,
		"addr", m.localAddr, "encrypted", kr != nil, "seeds", cfg.Seeds)
	return m, nil
}

// Start runs the background work: join the seeds (retrying until one
// answers, if there are any), re-join every RejoinInterval each seed that
// is not a live member, re-broadcast the local state every
// RefreshInterval and re-advertise changed metadata. It returns at once;
// the work stops at Leave or Shutdown. Calling it again does nothing.
func (m *Mesh) Start() {
	m.loopMu.Lock()
	defer m.loopMu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	m.wg.Add(3)
	go m.joinLoop()
	go m.refreshLoop()
	go m.metaLoop()
}

// stopLoops stops the background goroutines and waits for them.
func (m *Mesh) stopLoops() {
	m.loopMu.Lock()
	if !m.stopped {
		m.stopped = true
		close(m.stop)
	}
	m.loopMu.Unlock()
	m.wg.Wait()
}

// SetLocal publishes this node's state. Name, ClusterName and StartedAt
// are the mesh's whatever s says; Version is bumped when anything but
// ProducedAt changed, and only then is a broadcast queued and subscribers
// notified. ProducedAt is stamped every call: the periodic refresh carries
// it, so peers see a fresh state as long as the daemon keeps calling.
func (m *Mesh) SetLocal(s NodeState) {
	m.mu.Lock()
	prev := nodeMeta{NodeID: m.view.local.NodeID, APIURL: m.view.local.APIURL}
	st, changed := m.view.setLocal(s, m.now())
	m.mu.Unlock()
	if !changed {
		return
	}
	m.queueState(st)
	m.notify()
	if (nodeMeta{NodeID: st.NodeID, APIURL: st.APIURL}) != prev {
		select {
		case m.metaKick <- struct{}{}:
		default:
		}
	}
}

// Local returns the local state as last stamped by SetLocal.
func (m *Mesh) Local() NodeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneState(m.view.local)
}

// Members returns every member memberlist knows of, self included, sorted
// by NodeID then name, with their last known states. Failed and departed
// members stay listed as Dead or Left with their last state.
func (m *Mesh) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.snapshot()
}

// Member returns the member with the given NodeID. If several names claim
// it (a misconfiguration), a live one wins over a failed one.
func (m *Mesh) Member(nodeID int) (Member, bool) {
	var found Member
	ok := false
	for _, mb := range m.Members() {
		if mb.State.NodeID != nodeID {
			continue
		}
		if !ok || (!isLive(found.Liveness) && isLive(mb.Liveness)) {
			found, ok = mb, true
		}
	}
	return found, ok
}

func isLive(l Liveness) bool { return l == Alive || l == Suspect }

// NumAlive is the number of members, self included, not declared failed
// or departed (Alive or Suspect: a suspect has not been declared failed
// yet), like memberlist's NumMembers.
func (m *Mesh) NumAlive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.liveCount()
}

// Subscribe returns a channel that receives a value after the view
// changed (a newer state, a liveness change, a local change). Changes
// coalesce: the buffer holds one value, so read Members after each
// receive. cancel stops delivery; the channel is never closed.
func (m *Mesh) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.subMu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = ch
	m.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			m.subMu.Lock()
			delete(m.subs, id)
			m.subMu.Unlock()
		})
	}
}

func (m *Mesh) notify() {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// LocalAddr is the host:port this node advertises (with BindPort 0, the
// port actually bound).
func (m *Mesh) LocalAddr() string { return m.localAddr }

// HealthScore is memberlist's awareness score for this node (Lifeguard):
// 0 when healthy, higher when this node itself missed acks or refuted
// suspicions, i.e. its own view of the others is less reliable.
func (m *Mesh) HealthScore() int { return m.ml.GetHealthScore() }

// Leave announces a graceful departure so peers mark this node Left at
// once rather than Dead after the failure timeout: a leave notice goes to
// every member over TCP (and into gossip), then memberlist leaves. The
// background loops stop first so nothing re-joins. Call Shutdown after.
func (m *Mesh) Leave(timeout time.Duration) error {
	m.stopLoops()
	deadline := time.Now().Add(timeout)

	m.mu.Lock()
	notice := leaveNotice{Name: m.cfg.NodeName, StartedAt: m.view.local.StartedAt}
	m.mu.Unlock()
	if msg, err := encodeLeave(notice); err != nil {
		m.log.Error("cannot encode leave notice", "err", err)
	} else {
		m.queueMessage(leaveBroadcastName(notice.Name), msg)
		m.sendToAll(msg, timeout/2)
	}

	remaining := time.Until(deadline)
	if remaining <= 0 {
		remaining = time.Millisecond
	}
	if err := m.ml.Leave(remaining); err != nil {
		return fmt.Errorf("mesh: leave: %w", err)
	}
	m.log.Info("left the cluster")
	return nil
}

// sendToAll sends msg over TCP to every other member in parallel and
// waits up to timeout. Stragglers end on their own within TCPTimeout.
func (m *Mesh) sendToAll(msg []byte, timeout time.Duration) {
	m.mu.Lock()
	live := m.view.liveAddrs()
	m.mu.Unlock()
	var wg sync.WaitGroup
	for addr, name := range live {
		if name == m.cfg.NodeName {
			continue
		}
		n, err := nodeAt(name, addr)
		if err != nil {
			continue
		}
		wg.Go(func() {
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("send to member failed", "node", name, "err", err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Shutdown stops the background loops and memberlist without telling
// anyone: peers will detect a failure. Use Leave first for a clean stop.
func (m *Mesh) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.stopLoops()
		if err := m.ml.Shutdown(); err != nil {
			m.shutdownErr = fmt.Errorf("mesh: shutdown: %w", err)
		}
	})
	return m.shutdownErr
}

// RegisterHandler routes messages of kind (FirstHandlerKind or above) to
// h. Reserved for the election issue (raft messages over memberlist's
// reliable channel, see SendReliable); register before Start. The frame's
// version byte is the mesh's; a handler that needs to evolve its payload
// versions it itself. Messages of a kind without a handler are dropped
// and counted.
func (m *Mesh) RegisterHandler(kind byte, h Handler) error {
	if kind < FirstHandlerKind {
		return fmt.Errorf("mesh: message kind %#x is reserved for the mesh (use %#x or above)", kind, FirstHandlerKind)
	}
	if h == nil {
		return errors.New("mesh: nil handler")
	}
	m.handlerMu.Lock()
	defer m.handlerMu.Unlock()
	if _, dup := m.handlers[kind]; dup {
		return fmt.Errorf("mesh: message kind %#x already has a handler", kind)
	}
	m.handlers[kind] = h
	return nil
}

func (m *Mesh) handler(kind byte) Handler {
	m.handlerMu.RLock()
	defer m.handlerMu.RUnlock()
	return m.handlers[kind]
}

// SendReliable sends payload to the named live member over TCP, framed as
// kind (FirstHandlerKind or above), to be delivered to that member's
// handler for kind.
func (m *Mesh) SendReliable(node string, kind byte, payload []byte) error {
	if kind < FirstHandlerKind {
		return fmt.Errorf("mesh: message kind %#x is reserved for the mesh", kind)
	}
	if len(payload) > maxHandlerSize {
		return fmt.Errorf("mesh: payload of %d bytes is over the %d-byte limit", len(payload), maxHandlerSize)
	}
	m.loopMu.Lock()
	stopped := m.stopped
	m.loopMu.Unlock()
	if stopped {
		return ErrShutdown
	}
	m.mu.Lock()
	live := m.view.liveAddrs()
	m.mu.Unlock()
	for addr, name := range live {
		if name != node {
			continue
		}
		n, err := nodeAt(name, addr)
		if err != nil {
			return fmt.Errorf("mesh: send to %s: %w", node, err)
		}
		if err := m.ml.SendReliable(n, frame(kind, payload)); err != nil {
			return fmt.Errorf("mesh: send to %s: %w", node, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnknownMember, node)
}

// nodeAt builds the memberlist.Node a send needs (name and address only).
func nodeAt(name, addr string) (*memberlist.Node, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host)
	port, err := strconv.ParseUint(portStr, 10, 16)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("bad member address %q", addr)
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}, nil
}

// localMeta is what NodeMeta advertises.
func (m *Mesh) localMeta() nodeMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return nodeMeta{NodeID: m.view.local.NodeID, APIURL: m.view.local.APIURL}
}

// afterLivenessLocked refreshes the live count; call with mu held after
// any liveness change.
func (m *Mesh) afterLivenessLocked() {
	m.live.Store(int64(m.view.liveCount()))
}

// handleMessage decodes and dispatches one user message (broadcast or
// reliable). Malformed messages are counted and dropped.
func (m *Mesh) handleMessage(buf []byte) {
	m.stats.received.Add(1)
	kind, payload, err := decodeMessage(buf)
	if err != nil {
		m.drop(err)
		return
	}
	switch kind {
	case kindState:
		s, err := decodeState(payload)
		if err != nil {
			m.drop(err)
			return
		}
		m.receiveState(s, buf)
	case kindLeave:
		n, err := decodeLeave(payload)
		if err != nil {
			m.drop(err)
			return
		}
		m.mu.Lock()
		changed := m.view.leave(n, m.now())
		m.afterLivenessLocked()
		m.mu.Unlock()
		if changed {
			m.log.Info("member left", "node", n.Name)
			m.notify()
		}
	case kindSnapshot:
		m.drop(malformed("snapshot outside push/pull"))
	default:
		h := m.handler(kind)
		if h == nil {
			m.drop(malformed("no handler for kind %#x", kind))
			return
		}
		h(bytes.Clone(payload))
	}
}

// receiveState merges a broadcast state. A state that was news to us is
// re-broadcast (raw is the message as received) so it spreads
// epidemically rather than only from its origin.
func (m *Mesh) receiveState(s NodeState, raw []byte) {
	m.mu.Lock()
	res := m.view.applyState(s, m.now())
	m.mu.Unlock()
	m.afterApply(s, res)
	if res == applied && len(raw) <= maxBroadcastSize {
		m.queueMessage(stateBroadcastName(s.Name), bytes.Clone(raw))
	}
}

// handleSnapshot merges a push/pull snapshot. Its states are not
// re-broadcast: push/pull already is the anti-entropy path, and a joining
// node would otherwise flood the cluster with everyone's states.
func (m *Mesh) handleSnapshot(buf []byte) {
	m.stats.received.Add(1)
	kind, payload, err := decodeMessage(buf)
	if err != nil {
		m.drop(err)
		return
	}
	if kind != kindSnapshot {
		m.drop(malformed("kind %#x in push/pull", kind))
		return
	}
	states, invalid, err := decodeSnapshot(payload)
	if err != nil {
		m.drop(err)
		return
	}
	if invalid > 0 {
		m.drop(malformed("snapshot with %d invalid states", invalid))
	}
	results := make([]applyResult, len(states))
	m.mu.Lock()
	now := m.now()
	for i, s := range states {
		results[i] = m.view.applyState(s, now)
	}
	m.mu.Unlock()
	for i, s := range states {
		m.afterApply(s, results[i])
	}
}

// afterApply counts, logs and notifies for one applyState result.
func (m *Mesh) afterApply(s NodeState, res applyResult) {
	switch res {
	case applied:
		m.stats.applied.Add(1)
		m.notify()
	case invalid:
		m.drop(malformed("state without name or started_at"))
	case foreignCluster:
		m.stats.rejected.Add(1)
		m.warnOnce("foreign/"+s.ClusterName, "ignoring states of another cluster",
			"node", s.Name, "their_cluster", s.ClusterName)
	case ownConflict:
		m.stats.rejected.Add(1)
		m.warnOnce(fmt.Sprintf("conflict/%d", s.StartedAt), "another daemon publishes states under our name",
			"node", s.Name, "their_started_at", s.StartedAt, "their_version", s.Version)
	case ownStale:
		m.log.Debug("ignoring our own state from an earlier boot", "started_at", s.StartedAt)
	}
}

// queueState broadcasts the local state. A state too large for one gossip
// packet would sit in the queue forever, so it is left to push/pull.
func (m *Mesh) queueState(s NodeState) {
	msg, err := encodeState(s)
	if err != nil {
		m.log.Error("cannot encode local state", "err", err)
		return
	}
	if len(msg) > maxBroadcastSize {
		m.warnOnce("large-state", "local state too large to broadcast; peers get it by push/pull only",
			"bytes", len(msg), "limit", maxBroadcastSize)
		return
	}
	m.queueMessage(stateBroadcastName(s.Name), msg)
}

func (m *Mesh) queueMessage(name string, msg []byte) {
	m.queue.QueueBroadcast(&namedBroadcast{name: name, msg: msg})
	m.stats.queued.Add(1)
}

// snapshotMessage is LocalState's payload.
func (m *Mesh) snapshotMessage() []byte {
	m.mu.Lock()
	states := m.view.states()
	m.mu.Unlock()
	msg, err := encodeSnapshot(states)
	if err != nil {
		m.log.Error("cannot encode push/pull state", "err", err)
		return nil
	}
	return msg
}

// dropWarnEvery limits warnings about dropped messages; each drop is also
// logged at debug.
const dropWarnEvery = time.Minute

func (m *Mesh) drop(err error) {
	total := m.stats.dropped.Add(1)
	m.log.Debug("dropping message", "err", err)
	now := time.Now().UnixNano()
	last := m.lastDropWarn.Load()
	if now-last >= int64(dropWarnEvery) && m.lastDropWarn.CompareAndSwap(last, now) {
		m.log.Warn("dropping malformed messages", "err", err, "dropped_total", total)
	}
}

// warnOnce logs a warning the first time key is seen, so a condition that
// repeats at every gossip round is reported once. The set is bounded.
func (m *Mesh) warnOnce(key, msg string, args ...any) {
	m.mu.Lock()
	seen := m.warned[key]
	if !seen {
		if len(m.warned) >= 256 {
			clear(m.warned)
		}
		m.warned[key] = true
	}
	m.mu.Unlock()
	if !seen {
		m.log.Warn(msg, args...)
	}
}

// refreshLoop re-queues the local state every RefreshInterval, once the
// daemon has set one.
func (m *Mesh) refreshLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		st := cloneState(m.view.local)
		m.mu.Unlock()
		if st.Version > 0 {
			m.queueState(st)
		}
	}
}

// metaLoop re-advertises node metadata when SetLocal changed node_id or
// api_url. UpdateNode bumps the incarnation and floods an alive message,
// which is why only these two rarely-changing fields live there.
func (m *Mesh) metaLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.metaKick:
		}
		if err := m.ml.UpdateNode(metaUpdateTimeout); err != nil {
			m.log.Debug("re-advertising node metadata", "err", err)
		}
	}
}
