package mesh

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Link is how one direction of a link behaves: every packet waits Delay
// plus a uniform random extra in [0, Jitter) and is lost with probability
// Loss. Streams (memberlist's TCP) are never lossy: a real TCP would
// retransmit; they only pay Delay once when they connect.
type Link struct {
	Delay  time.Duration
	Jitter time.Duration
	Loss   float64
}

// NetStats counts what the network did with packets. All fields are
// totals since the network was created.
type NetStats struct {
	Sent          int64 // WriteTo calls that reached the network
	Delivered     int64 // packets handed to the receiver's PacketCh
	LostRandom    int64 // dropped by a link's Loss
	LostPartition int64 // dropped because a partition separates the ends
	LostDown      int64 // dropped because an end is crashed or shut down
	LostOverflow  int64 // dropped because the receiver's queue was full
	Dials         int64
	DialsRefused  int64 // to a crashed or unknown node
	DialsTimedOut int64 // across a partition
	StreamsCut    int64 // open streams closed by a partition or a crash

	// The duplicate-alive filter (filter.go; zero when it is off).
	FilteredAlive   int64 // alive messages dropped as provably ignored
	FilteredPackets int64 // packets not delivered because all parts were
	Markers         int64 // marker messages queued to receivers
	HandlerDrops    int64 // messages memberlist's handler queues dropped
	// MarkerMaxWait is the longest a marker waited in a receiver's
	// queues: the filter's argument needs it below GossipToTheDeadTime.
	MarkerMaxWait time.Duration
}

// inboxSize is a node's receive queue in packets, standing in for a UDP
// socket's receive buffer: a full queue drops.
const inboxSize = 2048

// heldLimit bounds the packets a paused node holds in each direction (a
// paused process's socket buffer fills up too).
const heldLimit = 4096

// Network is an in-memory network of memberlist transports. Addresses are
// fake IPv4 addresses (10.x.y.z:7946) that never touch the host's network
// stack or DNS. All methods are safe for concurrent use.
type Network struct {
	mu       sync.RWMutex
	byAddr   map[string]*Transport
	byName   map[string]*Transport
	def      Link
	links    map[[2]string]Link // (from addr, to addr) overrides
	side     map[string]int     // partition side by addr; nil: no partition
	nextHost uint32
	// capacity is the number of nodes the network is sized for (node
	// indexes in state messages are below it).
	capacity int

	// seed seeds every transport's loss and jitter draws.
	seed uint64
	// filterOn: transports created from now on filter duplicate alive
	// messages (filter.go).
	filterOn bool
	suspects *suspectLog
	// filterTap, if set (tests), sees every packet the filter handles:
	// as sent and as delivered (nil: not delivered).
	filterTap func(dst *Transport, sent, delivered []byte)

	sent, delivered, lostRandom, lostPartition, lostDown, lostOverflow  atomic.Int64
	dials, dialsRefused, dialsTimedOut, streamsCut                      atomic.Int64
	filteredMsgs, filteredPackets, markers, handlerDrops, markerMaxWait atomic.Int64
}

// EnableAliveFilter turns on the duplicate-alive filter (filter.go) for
// the transports created after the call.
func (n *Network) EnableAliveFilter() {
	n.mu.Lock()
	n.filterOn = true
	if n.suspects == nil {
		n.suspects = newSuspectLog()
	}
	n.mu.Unlock()
}

// TakeSuspicions returns the distinct suspect messages and suspected
// nodes the network delivered since the last call (0 without the
// duplicate-alive filter, which finds them).
func (n *Network) TakeSuspicions() (msgs, subjects int) {
	n.mu.Lock()
	l := n.suspects
	n.mu.Unlock()
	if l == nil {
		return 0, 0
	}
	return l.take()
}

// NewNetwork returns an empty network whose links all behave like def.
// seed seeds the loss and jitter draws (the interleaving of goroutines is
// not reproducible, so neither is a run; the seed only makes the random
// choices of one goroutine order repeatable).
func NewNetwork(def Link, seed uint64, capacity int) *Network {
	return &Network{
		capacity: capacity,
		byAddr:   make(map[string]*Transport),
		byName:   make(map[string]*Transport),
		def:      def,
		links:    make(map[[2]string]Link),
		seed:     seed,
	}
}

// SimPort is the port every simulated node listens on.
const SimPort = 7946

// NewTransport creates the transport of a new node called name, with the
// next free fake address. Pass it as memberlist.Config.Transport.
func (n *Network) NewTransport(name string) (*Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.byName[name]; dup {
		return nil, fmt.Errorf("sim/mesh: node %q already exists", name)
	}
	n.nextHost++
	h := n.nextHost
	if h >= 1<<24-1 {
		return nil, fmt.Errorf("sim/mesh: out of addresses")
	}
	ip := net.IPv4(10, byte(h>>16), byte(h>>8), byte(h))
	t := &Transport{
		net:      n,
		name:     name,
		ip:       ip,
		addr:     net.JoinHostPort(ip.String(), fmt.Sprint(SimPort)),
		packetCh: make(chan *memberlist.Packet, inboxSize),
		streamCh: make(chan net.Conn, 64),
		done:     make(chan struct{}),
	}
	t.rng = rand.New(rand.NewPCG(n.seed, uint64(h)))
	if n.filterOn {
		t.filter = newAliveFilter(nodeIndex(name), n.capacity)
		t.filter.suspects = n.suspects
	}
	t.udpAddr = &net.UDPAddr{IP: ip, Port: SimPort}
	t.tcpAddr = &net.TCPAddr{IP: ip, Port: SimPort}
	n.byAddr[t.addr] = t
	n.byName[name] = t
	return t, nil
}

// SetLink overrides the behaviour of the one-way link from -> to (node
// names). It returns an error for an unknown name.
func (n *Network) SetLink(from, to string, l Link) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, b := n.byName[from], n.byName[to]
	if a == nil || b == nil {
		return fmt.Errorf("sim/mesh: unknown node in link %s -> %s", from, to)
	}
	n.links[[2]string{a.addr, b.addr}] = l
	return nil
}

// SetDefaultLink changes the behaviour of every link without an override.
func (n *Network) SetDefaultLink(l Link) {
	n.mu.Lock()
	n.def = l
	n.mu.Unlock()
}

// Partition splits the network: nodes in different groups can no longer
// exchange packets, dials between them time out, and open streams between
// them are closed at once. Nodes not named in any group form one more
// group together. A new Partition replaces the previous one.
func (n *Network) Partition(groups ...[]string) error {
	n.mu.Lock()
	side := make(map[string]int, len(n.byAddr))
	for _, t := range n.byAddr {
		side[t.addr] = 0
	}
	for i, g := range groups {
		for _, name := range g {
			t := n.byName[name]
			if t == nil {
				n.mu.Unlock()
				return fmt.Errorf("sim/mesh: unknown node %q in partition", name)
			}
			side[t.addr] = i + 1
		}
	}
	n.side = side
	var cut []*streamPair
	for _, t := range n.byAddr {
		cut = t.openStreams(cut, func(p *streamPair) bool {
			// Each pair is listed by both ends: take it from its dialer.
			return p.ends[0].local == t && side[p.ends[0].local.addr] != side[p.ends[0].remote.addr]
		})
	}
	n.mu.Unlock()
	n.closeStreams(cut)
	return nil
}

// Heal removes the partition. Packets already dropped stay lost.
func (n *Network) Heal() {
	n.mu.Lock()
	n.side = nil
	n.mu.Unlock()
}

// Crash stops a node the way kill -9 does: from now on nothing it sends
// leaves, nothing reaches it, dials to it are refused and its open streams
// are closed. It does not stop the memberlist running on the transport;
// the caller shuts that down (without Leave) so its goroutines stop.
func (n *Network) Crash(name string) error {
	n.mu.Lock()
	t := n.byName[name]
	if t == nil {
		n.mu.Unlock()
		return fmt.Errorf("sim/mesh: unknown node %q", name)
	}
	t.crashed.Store(true)
	cut := t.openStreams(nil, func(*streamPair) bool { return true })
	n.mu.Unlock()
	n.closeStreams(cut)
	return nil
}

// Pause freezes a node's traffic for d, as a stopped process (SIGSTOP, a
// long GC or VM steal) would: packets it sends and packets sent to it are
// held and released, in order, when the pause ends; dials to it wait. The
// memberlist above keeps running its timers during the pause (a real
// paused process would not), so when the pause ends the node may suspect
// the peers whose acks it held: a harsher test than a real pause.
func (n *Network) Pause(name string, d time.Duration) error {
	n.mu.RLock()
	t := n.byName[name]
	n.mu.RUnlock()
	if t == nil {
		return fmt.Errorf("sim/mesh: unknown node %q", name)
	}
	t.pause(d)
	return nil
}

// Stats returns the packet and stream counters.
func (n *Network) Stats() NetStats {
	return NetStats{
		Sent:          n.sent.Load(),
		Delivered:     n.delivered.Load(),
		LostRandom:    n.lostRandom.Load(),
		LostPartition: n.lostPartition.Load(),
		LostDown:      n.lostDown.Load(),
		LostOverflow:  n.lostOverflow.Load(),
		Dials:         n.dials.Load(),
		DialsRefused:  n.dialsRefused.Load(),
		DialsTimedOut: n.dialsTimedOut.Load(),
		StreamsCut:    n.streamsCut.Load(),

		FilteredAlive:   n.filteredMsgs.Load(),
		FilteredPackets: n.filteredPackets.Load(),
		Markers:         n.markers.Load(),
		HandlerDrops:    n.handlerDrops.Load(),
		MarkerMaxWait:   time.Duration(n.markerMaxWait.Load()),
	}
}

// route looks up the destination of a packet or dial and the link to it.
// separated reports a partition between the two ends.
func (n *Network) route(from *Transport, to string) (dst *Transport, l Link, separated bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	dst = n.byAddr[to]
	if dst == nil {
		return nil, Link{}, false
	}
	l, ok := n.links[[2]string{from.addr, dst.addr}]
	if !ok {
		l = n.def
	}
	if n.side != nil && n.side[from.addr] != n.side[dst.addr] {
		separated = true
	}
	return dst, l, separated
}

// separated reports whether a partition currently separates a and b.
func (n *Network) separated(a, b *Transport) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.side != nil && n.side[a.addr] != n.side[b.addr]
}

// draw returns whether a packet is lost and its delay on link l.
func (n *Network) draw(src *Transport, l Link) (lost bool, delay time.Duration) {
	if l.Loss <= 0 && l.Jitter <= 0 {
		return false, l.Delay
	}
	// Each sender draws from its own generator: one shared generator
	// behind one mutex serialised every packet of every node.
	src.rngMu.Lock()
	defer src.rngMu.Unlock()
	if l.Loss > 0 && src.rng.Float64() < l.Loss {
		return true, 0
	}
	delay = l.Delay
	if l.Jitter > 0 {
		delay += time.Duration(src.rng.Int64N(int64(l.Jitter)))
	}
	return false, delay
}

// send carries one packet from src to the address to. It is called after
// the sender's pause check.
func (n *Network) send(src *Transport, b []byte, to string) {
	n.sent.Add(1)
	dst, l, sep := n.route(src, to)
	switch {
	case dst == nil || src.down() || dst.down():
		n.lostDown.Add(1)
		return
	case sep:
		n.lostPartition.Add(1)
		return
	}
	lost, delay := n.draw(src, l)
	if lost {
		n.lostRandom.Add(1)
		return
	}
	// memberlist may reuse b after WriteTo returns.
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: src.udpAddr}
	if delay <= 0 {
		n.arrive(src, dst, p)
		return
	}
	time.AfterFunc(delay, func() { n.arrive(src, dst, p) })
}

// arrive hands a packet to its receiver, unless the receiver went down or
// a partition started while it was in flight.
func (n *Network) arrive(src, dst *Transport, p *memberlist.Packet) {
	if dst.down() {
		n.lostDown.Add(1)
		return
	}
	if n.separated(src, dst) {
		n.lostPartition.Add(1)
		return
	}
	if dst.holdIn(p) {
		return
	}
	n.deliver(dst, p)
}

// deliver puts p in dst's receive queue, dropping it if the queue is
// full, through dst's duplicate-alive filter if it has one.
func (n *Network) deliver(dst *Transport, p *memberlist.Packet) {
	p.Timestamp = time.Now()
	if dst.filter != nil {
		n.filterAndDeliver(dst, p)
		return
	}
	n.enqueue(dst, p)
}

// enqueue puts p in dst's receive queue; false if the queue was full.
func (n *Network) enqueue(dst *Transport, p *memberlist.Packet) bool {
	select {
	case dst.packetCh <- p:
		n.delivered.Add(1)
		return true
	default:
		n.lostOverflow.Add(1)
		return false
	}
}

func (n *Network) closeStreams(cut []*streamPair) {
	for _, p := range cut {
		if p.cut() {
			n.streamsCut.Add(1)
		}
	}
}
