package sim

import (
	"fmt"
	"time"

	"github.com/ramd/ramd/detector"
	"github.com/ramd/ramd/election"
)

// simNode is one machine: a daemon process (the real election.Node and
// detector.Detector plus the glue in glue.go), its PostgreSQL (pgModel)
// and its disk (storage). The daemon can crash (both processes die; the
// disk keeps what was durable) and be paused (the daemon freezes; its
// PostgreSQL keeps running but no write is confirmed, because the write
// gate is served by the daemon).
type simNode struct {
	id         uint64
	clock      *clock
	wallOffset time.Duration
	up         bool
	pausedTill time.Duration

	// node is the election backend: raft (quorum) or lock (pglock).
	node election.Backend
	raft *election.Node
	lock *election.LockNode
	// client is the pglock backend's connections to the coordination
	// database (lockclient.go).
	client *lockClient
	det    *detector.Detector
	store  storage
	pg     pgModel

	// Write gate: open from LeaseAcquired until Fence/Demote, for token
	// leaseToken. Writes are confirmed only while it is open and the lease
	// is valid on the daemon's monotonic clock at that instant.
	gate       bool
	leaseToken uint64

	views     map[uint64]*peerView
	startedAt int64
	version   uint64
	ticks     uint64
	nextAdmin time.Duration
	applied   uint64 // highest token applied in this incarnation
	streaming bool
	leader    uint64
	lastValid time.Duration // node clock: lease last held (or promoted)
}

func (n *simNode) paused(now time.Duration) bool { return n.pausedTill > now }

// active: the daemon runs and is not frozen.
func (n *simNode) active(now time.Duration) bool { return n.up && !n.paused(now) }

func (n *simNode) facts() pgFacts {
	return pgFacts{
		running:   n.pg.running(),
		healthy:   n.pg.running() && !n.pg.busy() && (n.pg.role == pgPrimary || n.streaming),
		primary:   n.pg.role == pgPrimary && !n.pg.busy(),
		standbyOK: n.pg.role == pgStandby && !n.pg.busy(),
		position:  n.pg.position(),
		// As the daemon's fencedPrimary: named primary under the current
		// token, no lease, its WAL written under that token (this model's
		// fence closes the gate without stopping PostgreSQL, so a
		// running primary counts too; a standby does not).
		fencedPrimary: n.fencedPrimary(),
	}
}

func (n *simNode) fencedPrimary() bool {
	if n.node == nil || n.node.LeaseValid() || n.pg.busy() || n.pg.role == pgStandby {
		return false
	}
	st := n.node.State()
	return st.Bootstrapped && st.Primary == n.id && st.Token != 0 && n.pg.writerToken == st.Token
}

// leaseValidAt: the daemon's lease, judged on its monotonic clock at real
// time t (not on the Node's last tick, which lags by up to a tick).
func (n *simNode) leaseValidAt(t time.Duration) bool {
	return n.up && n.node != nil && n.leaseToken != 0 && n.clock.at(t) < n.node.LeaseExpiry()
}

// canAck: would this node acknowledge a write right now?
func (n *simNode) canAck(t time.Duration) bool {
	return n.active(t) && n.gate && n.pg.role == pgPrimary && !n.pg.busy() && n.node.LeaseValid() && n.leaseValidAt(t)
}

// start creates the daemon (fresh with peers, or from the disk).
func (s *sim) startDaemon(n *simNode, fresh bool) error {
	c := s.nodeCfg
	c.ID = n.id
	c.Start = n.clock.at(s.now)
	if fresh {
		if int(n.id) <= min(s.cfg.Nodes, election.MaxVoters) {
			c.Peers = s.founders
		}
	} else {
		c.Restart = n.store.restart()
	}
	det, err := detector.New(s.detCfg)
	if err != nil {
		return err
	}
	if s.pglock() {
		lc := election.LockConfig{ID: n.id, TickInterval: c.TickInterval, Start: c.Start, Lease: c.Lease, Sync: c.Sync}
		ln, err := election.NewLockNode(lc)
		if err != nil {
			return err
		}
		n.node, n.lock, n.raft = ln, ln, nil
		epoch := uint64(1)
		if n.client != nil {
			epoch = n.client.epoch + 1
		}
		n.client = &lockClient{epoch: epoch}
	} else {
		nd, err := election.NewNode(c)
		if err != nil {
			return err
		}
		n.node, n.raft = nd, nd
	}
	n.det, n.up = det, true
	n.gate, n.leaseToken, n.applied, n.leader = false, 0, 0, 0
	n.views = map[uint64]*peerView{}
	n.startedAt = int64(s.now) + int64(n.wallOffset)
	n.version = 0
	n.nextAdmin = c.Start
	n.pg.wantPrimary, n.pg.upstream = false, 0
	s.handleReady(n)
	return nil
}

// crash kills the daemon and PostgreSQL; the disk loses its cache.
func (s *sim) crash(n *simNode) {
	if n.client != nil {
		// The process is gone: its kernel closes both connections (a
		// FIN each, lost if the link is cut; then the server's keepalive
		// notices).
		s.lockClose(n, 0)
		s.lockClose(n, 1)
	}
	n.up, n.node, n.raft, n.lock, n.det, n.gate, n.leaseToken = false, nil, nil, nil, nil, false, 0
	n.pausedTill = 0
	n.pg.stop()
	n.streaming = false
	n.store.crash()
}

// catchUp ticks the Node until its logical time reaches the monotonic
// clock. The daemon must do this before it handles anything received
// after a freeze: a message handled at a stale logical time would date a
// lease grant too early.
func (s *sim) catchUp(n *simNode) {
	ti := s.nodeCfg.TickInterval
	for n.active(s.now) && n.node.Now()+ti <= n.clock.at(s.now) {
		n.node.SetLocal(localFacts(n.facts()))
		n.node.SetWallNow(s.wallMS(n))
		n.node.Tick()
		n.ticks++
		if n.ticks%uint64(s.gossipTicks) == 0 {
			s.gossip(n)
		}
		observe(s.glue, n.node, n.det, n.views, s.wallMS(n))
		if n.node.LeaseValid() {
			n.lastValid = n.node.Now()
		} else if s.cfg.StuckRelease && releaseIfStuck(s.glue, n.node, n.lastValid) {
			n.lastValid = n.node.Now() // once per ReleaseAfter at most
		}
		if n.node.Now() >= n.nextAdmin {
			n.nextAdmin = n.node.Now() + s.glue.AdminEvery
			admin(s.glue, n.node, s.ids)
		}
		s.handleReady(n)
	}
}

func (s *sim) wallMS(n *simNode) int64 { return int64(s.now+n.wallOffset) / int64(time.Millisecond) }

func (s *sim) gossip(n *simNode) {
	n.version++
	st := nodeState(n.id, n.facts(), n.startedAt, n.version, s.wallMS(n))
	for _, o := range s.nodes {
		if o.id != n.id {
			s.net.send(s.now, packet{from: n.id, to: o.id, gossip: &st})
		}
	}
}

// deliver hands one packet to an active node.
func (s *sim) deliver(n *simNode, p packet) {
	s.catchUp(n)
	if p.dbRep != nil {
		if n.lock != nil {
			s.lockReply(n, *p.dbRep)
		}
		return
	}
	if p.gossip != nil {
		if v := n.views[p.from]; v == nil || p.gossip.NewerThan(v.state) {
			n.views[p.from] = &peerView{state: *p.gossip, heardAt: n.node.Now()}
		}
		return
	}
	m, err := election.DecodeMessage(p.data)
	if err != nil {
		s.fail("wire", fmt.Sprintf("message %d->%d does not decode: %v", p.from, p.to, err))
		return
	}
	_ = n.node.Step(m) // rejected messages are dropped, as on a network
	s.handleReady(n)
}

// handleReady carries out Readys in the order election/ready.go
// documents: Fence and Demote first, then persist, then send, then the
// other actions, then Advance.
func (s *sim) handleReady(n *simNode) {
	for n.node != nil {
		if n.lock != nil && len(n.client.results) > 0 {
			r := n.client.results[0]
			n.client.results = n.client.results[1:]
			n.lock.OnResult(r)
			continue
		}
		if !n.node.HasReady() {
			break
		}
		rd := n.node.Ready()
		for _, a := range rd.Actions {
			if a.Kind == election.ActFence || a.Kind == election.ActDemote {
				s.act(n, a)
			}
		}
		if n.raft != nil {
			n.store.persist(s.now, rd)
		}
		for _, m := range rd.Messages {
			b, err := m.Encode()
			if err != nil {
				s.fail("wire", fmt.Sprintf("n%d cannot encode %v: %v", n.id, m, err))
				continue
			}
			s.net.send(s.now, packet{from: n.id, to: m.To, data: b})
		}
		for _, op := range rd.Ops {
			s.lockSubmit(n, op)
		}
		for _, ap := range rd.Applied {
			s.onApplied(n, ap)
		}
		for _, a := range rd.Actions {
			if a.Kind != election.ActFence && a.Kind != election.ActDemote {
				s.act(n, a)
			}
		}
		for _, e := range rd.Events {
			if e.Kind == "start" || e.Kind == "lease-acquired" || e.Kind == "lease-lost" || e.Kind == "promote" || e.Kind == "demote" {
				continue // the actions say the same
			}
			s.record(n.id, "event", e.String())
			if e.Kind == "failover" {
				s.onFailoverStarted(n)
			}
		}
		n.node.Advance()
		if rd.State != nil {
			s.onState(n, *rd.State)
		}
	}
}

func (s *sim) act(n *simNode, a election.Action) {
	s.record(n.id, "action", a.String())
	switch a.Kind {
	case election.ActFence:
		n.gate = false
	case election.ActDemote:
		n.gate = false
		n.pg.stop() // fence PostgreSQL itself: immediate stop
		n.pg.wantPrimary, n.pg.upstream = false, a.NewPrimary
	case election.ActPromote:
		s.checkPromoteBacked(n, a.Token)
		n.lastValid = n.node.Now()
		n.pg.wantPrimary, n.pg.wantToken = true, a.Token
	case election.ActFollow:
		n.pg.wantPrimary, n.pg.upstream = false, a.NewPrimary
	case election.ActLeaseAcquired:
		n.gate, n.leaseToken = true, a.Token
	}
}
