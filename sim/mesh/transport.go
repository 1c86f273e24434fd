package mesh

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is one node's memberlist.NodeAwareTransport on a Network.
// Packets behave like UDP: WriteTo always reports success, even when the
// network drops the packet, because that is all a UDP sender ever learns
// (a transport that returned an error would let memberlist notice a lost
// peer without probing it). Streams behave like TCP: a dial to a crashed
// node is refused at once, a dial across a partition hangs until its
// timeout, and a partition or crash closes open streams.
type Transport struct {
	net      *Network
	name     string
	ip       net.IP
	addr     string
	udpAddr  *net.UDPAddr
	tcpAddr  *net.TCPAddr
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	rngMu sync.Mutex
	rng   *rand.Rand // loss and jitter draws of packets this node sends

	// filter drops duplicate alive messages to this node (nil: off).
	filter *aliveFilter

	// streams are the open streams this node is an end of. Each node
	// keeps its own: one registry for the whole network under one mutex
	// became a lock convoy at 1,000 nodes (hundreds of dials queued on it
	// while its holder waited to be scheduled).
	smu     sync.Mutex
	streams map[*streamPair]struct{}

	crashed  atomic.Bool
	shut     atomic.Bool
	done     chan struct{}
	shutOnce sync.Once

	pmu     sync.Mutex
	paused  bool
	resumed chan struct{} // closed when the current pause ends
	// pendingUntil is when the latest pause requested ends.
	pendingUntil time.Time
	heldIn       []*memberlist.Packet
	heldOut      []heldPacket
}

type heldPacket struct {
	buf []byte
	to  string
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Name is the node name the transport was created for.
func (t *Transport) Name() string { return t.name }

// Addr is the node's "ip:port" address, the form Join expects.
func (t *Transport) Addr() string { return t.addr }

// FinalAdvertiseAddr ignores the configured values: a node's address is
// the one the network gave it.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, SimPort, nil
}

// WriteTo sends a packet; see WriteToAddress.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet and reports success whatever becomes of
// it, like a UDP send.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.holdOut(b, a.Addr) {
		return now, nil
	}
	t.net.send(t, b, a.Addr)
	return now, nil
}

// PacketCh delivers the packets that reached this node.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh delivers the streams other nodes opened to this one.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialTimeout opens a stream; see DialAddressTimeout.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to a.Addr. It fails at once when the
// peer is crashed or unknown (connection refused) and after timeout when
// a partition separates the two nodes or the peer stays paused.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	n := t.net
	n.dials.Add(1)
	deadline := time.Now().Add(timeout)
	if t.down() {
		return nil, dialErr(a.Addr, net.ErrClosed)
	}
	dst, l, sep := n.route(t, a.Addr)
	if dst == nil || dst.down() {
		n.dialsRefused.Add(1)
		return nil, dialErr(a.Addr, syscall.ECONNREFUSED)
	}
	if sep {
		// The SYN is lost; a real dial retries until its timeout.
		n.dialsTimedOut.Add(1)
		t.sleepUntil(deadline)
		return nil, dialErr(a.Addr, errDialTimeout)
	}
	if l.Delay > 0 {
		time.Sleep(l.Delay) // the handshake
	}
	// A paused end neither sends nor accepts until it resumes.
	for _, end := range []*Transport{t, dst} {
		if !end.waitResumed(deadline, t.done) {
			n.dialsTimedOut.Add(1)
			return nil, dialErr(a.Addr, errDialTimeout)
		}
	}
	if dst.down() {
		n.dialsRefused.Add(1)
		return nil, dialErr(a.Addr, syscall.ECONNREFUSED)
	}
	if n.separated(t, dst) {
		n.dialsTimedOut.Add(1)
		t.sleepUntil(deadline)
		return nil, dialErr(a.Addr, errDialTimeout)
	}
	client, server := newStreamPair(n, t, dst)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case dst.streamCh <- server:
		return client, nil
	case <-dst.done:
		client.Close()
		n.dialsRefused.Add(1)
		return nil, dialErr(a.Addr, syscall.ECONNREFUSED)
	case <-timer.C:
		client.Close()
		n.dialsTimedOut.Add(1)
		return nil, dialErr(a.Addr, errDialTimeout)
	}
}

// Shutdown stops the transport; memberlist calls it from its Shutdown.
func (t *Transport) Shutdown() error {
	t.shutOnce.Do(func() {
		t.shut.Store(true)
		close(t.done)
	})
	return nil
}

// Paused reports whether the node's traffic is currently held.
func (t *Transport) Paused() bool {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	return t.paused
}

func (t *Transport) down() bool { return t.crashed.Load() || t.shut.Load() }

func (t *Transport) sleepUntil(deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.done:
	}
}

// pause holds the node's traffic for d. A pause that starts while one is
// running extends it to whichever ends later.
func (t *Transport) pause(d time.Duration) {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if !t.paused {
		t.paused = true
		t.resumed = make(chan struct{})
	}
	// Each pause schedules its own end; an earlier end that finds a later
	// pause pending leaves it alone.
	until := time.Now().Add(d)
	time.AfterFunc(d, func() { t.unpause(until) })
	t.pendingUntil = maxTime(t.pendingUntil, until)
}

func (t *Transport) unpause(until time.Time) {
	t.pmu.Lock()
	if !t.paused || t.pendingUntil.After(until) {
		t.pmu.Unlock()
		return
	}
	t.paused = false
	close(t.resumed)
	in, out := t.heldIn, t.heldOut
	t.heldIn, t.heldOut = nil, nil
	t.pmu.Unlock()
	for _, p := range out {
		t.net.send(t, p.buf, p.to)
	}
	for _, p := range in {
		if t.down() {
			t.net.lostDown.Add(1)
			continue
		}
		t.net.deliver(t, p)
	}
}

// holdIn keeps an arriving packet while the node is paused.
func (t *Transport) holdIn(p *memberlist.Packet) bool {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if !t.paused {
		return false
	}
	if len(t.heldIn) >= heldLimit {
		t.net.lostOverflow.Add(1)
		return true
	}
	t.heldIn = append(t.heldIn, p)
	return true
}

// holdOut keeps a packet the node sends while paused.
func (t *Transport) holdOut(b []byte, to string) bool {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if !t.paused {
		return false
	}
	if len(t.heldOut) >= heldLimit {
		t.net.lostOverflow.Add(1)
		return true
	}
	t.heldOut = append(t.heldOut, heldPacket{buf: append([]byte(nil), b...), to: to})
	return true
}

// waitResumed waits for the node's pause (if any) to end; false if the
// deadline passed or stop closed first.
func (t *Transport) waitResumed(deadline time.Time, stop <-chan struct{}) bool {
	t.pmu.Lock()
	if !t.paused {
		t.pmu.Unlock()
		return true
	}
	ch := t.resumed
	t.pmu.Unlock()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	case <-stop:
		return false
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// timeoutError is what a dial that timed out wraps, like the net
// package's: it reports Timeout() == true.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var errDialTimeout error = timeoutError{}

func dialErr(addr string, err error) error {
	a, _ := net.ResolveTCPAddr("tcp", addr) // addr is always ip:port here: no DNS
	return &net.OpError{Op: "dial", Net: "tcp", Addr: a, Err: err}
}

// IsDialTimeout reports whether err is a dial that timed out.
func IsDialTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// IsRefused reports whether err is a refused dial.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func (t *Transport) addStream(p *streamPair) {
	t.smu.Lock()
	if t.streams == nil {
		t.streams = make(map[*streamPair]struct{})
	}
	t.streams[p] = struct{}{}
	t.smu.Unlock()
}

func (t *Transport) removeStream(p *streamPair) {
	t.smu.Lock()
	delete(t.streams, p)
	t.smu.Unlock()
}

// openStreams appends to dst the open streams of t that keep accepts.
func (t *Transport) openStreams(dst []*streamPair, keep func(*streamPair) bool) []*streamPair {
	t.smu.Lock()
	defer t.smu.Unlock()
	for p := range t.streams {
		if keep(p) {
			dst = append(dst, p)
		}
	}
	return dst
}
