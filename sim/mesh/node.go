package mesh

import (
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// clusterLabel is memberlist's Label for every simulated node. The daemon
// sets Label to its cluster name; the simulator does the same, so every
// packet and stream carries the label header as in production.
const clusterLabel = "ramd-sim"

// stateMsgSize is the size of the simulated state broadcast, about the
// size of a daemon's encoded NodeState.
const stateMsgSize = 256

// nodeName is the memberlist name of node i.
func nodeName(i int) string { return fmt.Sprintf("n%04d", i) }

// nodeIndex parses a name made by nodeName; -1 if it is not one.
func nodeIndex(name string) int {
	if len(name) < 2 || name[0] != 'n' {
		return -1
	}
	i, err := strconv.Atoi(name[1:])
	if err != nil {
		return -1
	}
	return i
}

// node is one simulated daemon: a real memberlist over a Transport, with a
// delegate that publishes a state broadcast and metadata (as the daemon's
// mesh does) and a loop that re-joins seeds it does not see alive.
type node struct {
	idx   int
	name  string
	tr    *Transport
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	rec   *recorder
	seeds []string // seed addresses, without our own
	// seedIdx[k] is the node index of seeds[k]; seedLive[k] whether this
	// node currently sees it alive.
	seedIdx  []int
	seedLive []atomic.Bool

	live atomic.Int32 // members this node sees alive, itself included
	// known[i] is the newest state version of node i this node has.
	known   []atomic.Uint32
	meta    atomic.Pointer[[]byte]
	version atomic.Uint32 // of the state broadcast

	stop    chan struct{}
	stopped atomic.Bool
}

func newNode(idx int, netw *Network, t Timings, rec *recorder, seedIdx []int, logOut io.Writer) (*node, error) {
	name := nodeName(idx)
	tr, err := netw.NewTransport(name)
	if err != nil {
		return nil, err
	}
	nd := &node{idx: idx, name: name, tr: tr, rec: rec, stop: make(chan struct{})}
	empty := []byte{}
	nd.meta.Store(&empty)
	for _, s := range seedIdx {
		if s != idx {
			nd.seedIdx = append(nd.seedIdx, s)
		}
	}
	nd.seedLive = make([]atomic.Bool, len(nd.seedIdx))
	nd.known = make([]atomic.Uint32, netw.capacity)
	nd.queue = &memberlist.TransmitLimitedQueue{
		// memberlist calls NumNodes on every gossip round: use the count
		// kept by the event callbacks, not the O(n) Members().
		NumNodes:       func() int { return int(nd.live.Load()) },
		RetransmitMult: t.StateRetransmitMult,
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.Transport = tr
	mc.Label = clusterLabel
	mc.ProbeInterval = t.ProbeInterval
	mc.ProbeTimeout = t.ProbeTimeout
	mc.SuspicionMult = t.SuspicionMult
	mc.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	mc.GossipInterval = t.GossipInterval
	mc.GossipNodes = t.GossipNodes
	mc.PushPullInterval = t.PushPullInterval
	mc.TCPTimeout = t.TCPTimeout
	mc.DeadNodeReclaimTime = t.DeadNodeReclaimTime
	mc.RetransmitMult = t.RetransmitMult
	if t.UDPBufferSize > 0 {
		mc.UDPBufferSize = t.UDPBufferSize
	}
	mc.EnableCompression = false // as the daemon
	mc.Delegate = (*nodeDelegate)(nd)
	mc.Events = (*nodeEvents)(nd)
	mc.LogOutput = nil
	if logOut == nil {
		logOut = io.Discard
	}
	// The watch counts the handler queue's drops, which the duplicate-
	// alive filter must know about (filter.go).
	mc.Logger = log.New(&handlerDropWatch{n: netw, f: tr.filter, next: logOut}, name+" ", log.Lmicroseconds)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	nd.ml = ml
	return nd, nil
}

// seedAddr is the address of node i (all nodes share one port).
func (nd *node) seedAddrs(addrOf func(int) string) {
	nd.seeds = nd.seeds[:0]
	for _, s := range nd.seedIdx {
		nd.seeds = append(nd.seeds, addrOf(s))
	}
}

// rejoinLoop is the daemon's join loop (mesh/rejoin.go) in small: every
// interval, join each seed this node does not see alive.
func (nd *node) rejoinLoop(interval time.Duration) {
	// Spread the nodes over the interval, as independent daemons are.
	first := time.Duration(rand.Int64N(int64(interval)))
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-nd.stop:
			return
		case <-timer.C:
		}
		for k, addr := range nd.seeds {
			if nd.seedLive[k].Load() || nd.stopped.Load() {
				continue
			}
			_, _ = nd.ml.Join([]string{addr})
		}
		timer.Reset(interval)
	}
}

// crash stops the node without a leave: the network first cuts it off,
// then its memberlist is shut down so its goroutines stop.
func (nd *node) crash(netw *Network) {
	if nd.stopped.Swap(true) {
		return
	}
	_ = netw.Crash(nd.name)
	close(nd.stop)
	_ = nd.ml.Shutdown()
}

// shutdown stops a node at the end of a run.
func (nd *node) shutdown() {
	if nd.stopped.Swap(true) {
		return
	}
	close(nd.stop)
	_ = nd.ml.Shutdown()
}

// broadcastState queues a new version of this node's state broadcast, the
// way the daemon's SetLocal does, and returns the version.
func (nd *node) broadcastState() uint32 {
	v := nd.version.Add(1)
	nd.known[nd.idx].Store(v)
	msg := make([]byte, stateMsgSize)
	msg[0] = msgState
	binary.BigEndian.PutUint32(msg[1:5], uint32(nd.idx))
	binary.BigEndian.PutUint32(msg[5:9], v)
	nd.queue.QueueBroadcast(&stateBroadcast{name: nd.name, msg: msg})
	return v
}

// setMeta changes the node metadata and re-advertises it (memberlist's
// UpdateNode bumps the incarnation and broadcasts an alive message).
func (nd *node) setMeta(meta []byte) error {
	m := append([]byte(nil), meta...)
	nd.meta.Store(&m)
	return nd.ml.UpdateNode(5 * time.Second)
}

const msgState = 's'

// stateBroadcast is a named broadcast: a newer state of the same node
// replaces a queued older one, as in the daemon.
type stateBroadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*stateBroadcast)(nil)

func (b *stateBroadcast) Name() string                          { return b.name }
func (b *stateBroadcast) Message() []byte                       { return b.msg }
func (b *stateBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *stateBroadcast) Finished()                             {}

// nodeDelegate is the node's memberlist.Delegate.
type nodeDelegate node

func (d *nodeDelegate) NodeMeta(limit int) []byte {
	m := *d.meta.Load()
	if len(m) > limit {
		m = m[:limit]
	}
	return m
}

func (d *nodeDelegate) NotifyMsg(buf []byte) {
	if len(buf) == 9 && buf[0] == msgMarker && d.tr.filter != nil {
		d.tr.filter.markerSeen(d.tr.net, binary.BigEndian.Uint64(buf[1:]))
		return
	}
	if len(buf) < 9 || buf[0] != msgState {
		return
	}
	subj := int(binary.BigEndian.Uint32(buf[1:5]))
	v := binary.BigEndian.Uint32(buf[5:9])
	if subj < 0 || subj >= len(d.known) {
		return
	}
	for {
		old := d.known[subj].Load()
		if v <= old {
			return // not news
		}
		if d.known[subj].CompareAndSwap(old, v) {
			break
		}
	}
	d.rec.onState(d.idx, subj, v)
	// As the daemon does (mesh.receiveState), a state that was news is
	// re-broadcast, so it spreads epidemically and not only from its
	// origin. buf is memberlist's; keep a copy.
	d.queue.QueueBroadcast(&stateBroadcast{name: nodeName(subj), msg: append([]byte(nil), buf...)})
}

func (d *nodeDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

// LocalState is empty: the daemon's push/pull carries its view of every
// node's state, which is not measured here.
func (d *nodeDelegate) LocalState(bool) []byte                 { return nil }
func (d *nodeDelegate) MergeRemoteState(buf []byte, join bool) {}

// nodeEvents is the node's memberlist.EventDelegate. memberlist calls it
// with its node lock held: it only updates counters.
type nodeEvents node

func (e *nodeEvents) NotifyJoin(n *memberlist.Node) {
	e.live.Add(1)
	subj := nodeIndex(n.Name)
	if e.tr.filter != nil {
		e.tr.filter.onJoin(subj)
	}
	e.setSeed(subj, true)
	e.rec.onAlive(e.idx, subj)
}

func (e *nodeEvents) NotifyLeave(n *memberlist.Node) {
	e.live.Add(-1)
	subj := nodeIndex(n.Name)
	if e.tr.filter != nil {
		e.tr.filter.onLeave(subj)
	}
	e.setSeed(subj, false)
	e.rec.onDead(e.idx, subj)
}

func (e *nodeEvents) NotifyUpdate(n *memberlist.Node) {
	e.rec.onMeta(e.idx, nodeIndex(n.Name), n.Meta)
}

func (e *nodeEvents) setSeed(subj int, live bool) {
	for k, s := range e.seedIdx {
		if s == subj {
			e.seedLive[k].Store(live)
		}
	}
}
