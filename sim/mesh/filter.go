package mesh

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"hash/maphash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// The duplicate-alive filter, a simulation accommodation.
//
// In a cluster of n nodes every node learns each alive message (a join,
// a refutation, a metadata change) once and then receives it again up to
// RetransmitMult·ceil(log10(n+1)) times (16 at 1,000 nodes) from the
// nodes re-broadcasting it. memberlist decodes every copy and ignores all
// but the first. On real machines each node pays for its own copies on
// its own CPU; here n memberlists share two cores, and those ≈ n²·16
// decodes during formation and re-merge are what starved the acks at
// 1,000 nodes. The filter drops, per receiver, an alive message that the
// receiving memberlist provably ignores, so that the receiver's decisions
// are the ones it would have made without the filter; only its CPU
// changes.
//
// What memberlist v0.7.0 does with an alive message (state.go aliveNode):
// for a node other than the receiver itself, already in its node map at
// the same address, it returns without any effect when the incarnation is
// not above the one it holds. The incarnation it holds for a node only
// grows, except when the node is removed from the map ("reaped"), which
// happens only to a node dead or left for GossipToTheDeadTime (30 s).
//
// The filter drops the message part m (the exact bytes, type byte
// included) at receiver R only when all of these hold:
//
//  1. m is an alive message about a node X other than R;
//  2. a byte-identical copy of m (identical as far as a 128-bit hash of
//     the bytes tells, see msgKey) was delivered to R before and R's
//     memberlist has processed it: the copy went into R's receive queue,
//     no message was dropped by R's handler queue (memberlist logs
//     "handler queue full") from then until a marker queued after the
//     copy was processed; the marker is a user message, which memberlist
//     processes only when no alive message is waiting, so the copy was
//     handled by aliveNode before it. Afterwards R holds X at an
//     incarnation not below m's (R's map entry for X has one address, the
//     one in m: every simulated node keeps its address);
//  3. R has not declared X dead or left (NotifyLeave) since that copy
//     went into its queue, and R currently sees X alive or suspect.
//
// By 3, R cannot reap X sooner than GossipToTheDeadTime after the drop;
// a copy that is not dropped is processed within the time the receive
// queues take to drain (the marker latency, reported as MarkerMaxWait),
// so — as long as that is below 30 s — R processes it while it still
// holds X at an incarnation ≥ m's, and ignores it. The filter never
// touches other message types, nor alive messages about the receiver
// itself (those make it refute).
//
// A packet whose parts are all dropped is not delivered; otherwise the
// compound message is rebuilt with the remaining parts (count and lengths
// fixed) and its CRC header, when it has one, recomputed.

// msgMarker starts a marker's user message (the state broadcasts start
// with msgState).
const msgMarker = 'm'

// memberlist's message types (net.go) that the filter reads.
const (
	mlAliveMsg    = 4
	mlCompoundMsg = 7
	mlUserMsg     = 8
	mlHasCrcMsg   = 12
	mlHasLabelMsg = 244
)

// pendingAlive is an alive message delivered to the receiver and not yet
// known to be processed.
type pendingAlive struct {
	key   msgKey
	subj  int32
	epoch uint32
}

// msgKey identifies a message by its bytes: two independently seeded
// 64-bit hashes (hash/maphash) of them. The filter used the bytes
// themselves as map keys; at 1,000 nodes those maps held about a million
// strings that every garbage collection had to scan. A false match needs
// two distinct alive messages to agree in all 128 bits.
type msgKey [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func keyOf(b []byte) msgKey {
	return msgKey{maphash.Bytes(keySeeds[0], b), maphash.Bytes(keySeeds[1], b)}
}

// confirmedAlive is an alive message the receiver has processed.
type confirmedAlive struct {
	subj  int32
	epoch uint32 // the subject's leave epoch when the copy was delivered
}

// aliveFilter is one receiver's filter state.
type aliveFilter struct {
	self int32

	// Per subject node: leaves counts NotifyLeave calls (the epoch),
	// alive whether the receiver currently sees it alive or suspect.
	leaves []atomic.Uint32
	alive  []atomic.Bool
	// drops counts "handler queue full" log lines of the receiver.
	drops atomic.Int64

	mu        sync.Mutex
	confirmed map[msgKey]confirmedAlive
	// cur: delivered since the last marker was queued; curDrops: drops
	// before the first of them was queued.
	cur      []pendingAlive
	curDrops int64
	// inflight: delivered before the outstanding marker (gen) was queued.
	inflight      []pendingAlive
	inflightDrops int64
	outstanding   bool
	gen           uint64
	markerAt      time.Time
	// suspects, when set, counts the suspect messages seen (suspects.go).
	suspects *suspectLog
}

func newAliveFilter(self, capacity int) *aliveFilter {
	return &aliveFilter{
		self:      int32(self),
		leaves:    make([]atomic.Uint32, capacity),
		alive:     make([]atomic.Bool, capacity),
		confirmed: make(map[msgKey]confirmedAlive),
	}
}

// onJoin and onLeave follow the receiver's memberlist events.
func (f *aliveFilter) onJoin(subj int) {
	if subj >= 0 && subj < len(f.alive) {
		f.alive[subj].Store(true)
	}
}

func (f *aliveFilter) onLeave(subj int) {
	if subj >= 0 && subj < len(f.alive) {
		f.alive[subj].Store(false)
		f.leaves[subj].Add(1)
	}
}

// handlerDropWatch is a node's memberlist log output: it counts the
// handler queue's drops (for the filter and NetStats) and passes the log
// on. It is installed with the filter off too, so that both kinds of run
// pay the same for log formatting.
type handlerDropWatch struct {
	n    *Network
	f    *aliveFilter // nil when the filter is off
	next io.Writer
}

var handlerQueueFull = []byte("handler queue full")

func (w *handlerDropWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, handlerQueueFull) {
		w.n.handlerDrops.Add(1)
		if w.f != nil {
			w.f.drops.Add(1)
		}
	}
	if w.next == io.Discard {
		return len(p), nil
	}
	return w.next.Write(p)
}

// filterAndDeliver delivers p to dst through dst's filter. It is called
// instead of a plain queue send when the filter is on.
func (n *Network) filterAndDeliver(dst *Transport, p *memberlist.Packet) {
	f := dst.filter
	f.mu.Lock()
	defer f.mu.Unlock()
	sent := p.Buf
	out, fresh, dropped := f.filter(sent)
	if n.filterTap != nil {
		n.filterTap(dst, sent, out)
	}
	if dropped > 0 {
		n.filteredMsgs.Add(int64(dropped))
		if out == nil {
			n.filteredPackets.Add(1)
			return
		}
		p.Buf = out
	}
	if len(f.cur) == 0 {
		f.curDrops = f.drops.Load()
	}
	if !n.enqueue(dst, p) {
		return
	}
	f.cur = append(f.cur, fresh...)
	f.maybeMark(n, dst)
}

// filter drops the alive parts of packet b that the receiver has provably
// processed already. It returns the packet to deliver (b itself if
// nothing was dropped, nil if everything was), the alive parts it lets
// through (to be confirmed by the next marker) and how many it dropped.
// f.mu is held.
func (f *aliveFilter) filter(b []byte) (out []byte, fresh []pendingAlive, dropped int) {
	view, ok := splitPacket(b)
	if !ok {
		return b, nil, 0
	}
	kept := view.parts[:0:0]
	for _, part := range view.parts {
		if len(part) > 0 && part[0] == mlSuspectMsg && f.suspects != nil {
			f.suspects.note(part)
		}
		if len(part) == 0 || part[0] != mlAliveMsg {
			kept = append(kept, part)
			continue
		}
		key := keyOf(part)
		if c, hit := f.confirmed[key]; hit &&
			f.leaves[c.subj].Load() == c.epoch && f.alive[c.subj].Load() {
			dropped++
			continue
		}
		kept = append(kept, part)
		subj := int32(nodeIndex(aliveSubject(part[1:])))
		if subj >= 0 && int(subj) < len(f.leaves) && subj != f.self {
			fresh = append(fresh, pendingAlive{key: key, subj: subj, epoch: f.leaves[subj].Load()})
		}
	}
	switch {
	case dropped == 0:
		return b, fresh, 0
	case len(kept) == 0:
		return nil, nil, dropped
	}
	view.parts = kept
	return view.build(), fresh, dropped
}

// maybeMark queues a marker behind the delivered alive messages when none
// is outstanding. A marker outstanding while the handler queue dropped
// something may itself be lost: its messages are given up on.
func (f *aliveFilter) maybeMark(n *Network, dst *Transport) {
	if f.outstanding && f.drops.Load() != f.inflightDrops {
		f.outstanding, f.inflight = false, nil
	}
	if f.outstanding || len(f.cur) == 0 {
		return
	}
	f.gen++
	msg := make([]byte, 10)
	msg[0] = mlUserMsg
	msg[1] = msgMarker
	binary.BigEndian.PutUint64(msg[2:], f.gen)
	buf, err := memberlist.AddLabelHeaderToPacket(msg, clusterLabel)
	if err != nil {
		return
	}
	m := &memberlist.Packet{Buf: buf, From: dst.udpAddr, Timestamp: time.Now()}
	select {
	case dst.packetCh <- m:
	default:
		return // full queue: try with the next packet
	}
	n.markers.Add(1)
	f.inflight, f.inflightDrops = f.cur, f.curDrops
	f.cur = nil
	f.outstanding = true
	f.markerAt = time.Now()
}

// markerSeen is called by the receiver's delegate when memberlist hands
// it marker gen: every alive message queued before it was processed.
func (f *aliveFilter) markerSeen(n *Network, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.outstanding || gen != f.gen {
		return
	}
	wait := time.Since(f.markerAt)
	for {
		old := n.markerMaxWait.Load()
		if int64(wait) <= old || n.markerMaxWait.CompareAndSwap(old, int64(wait)) {
			break
		}
	}
	if f.drops.Load() == f.inflightDrops {
		for _, a := range f.inflight {
			if f.leaves[a.subj].Load() == a.epoch {
				f.confirmed[a.key] = confirmedAlive{subj: a.subj, epoch: a.epoch}
			}
		}
	}
	f.inflight = nil
	f.outstanding = false
}

// packetView is a packet split the way memberlist's ingestPacket and
// handleCommand read it (no encryption, no compression: the simulated
// nodes use neither).
type packetView struct {
	label    []byte // the label header, as received
	crc      bool
	compound bool
	parts    [][]byte // each message with its type byte
}

// splitPacket splits b; ok is false for anything it does not fully
// understand (such a packet is delivered unchanged).
func splitPacket(b []byte) (v packetView, ok bool) {
	if len(b) >= 2 && b[0] == mlHasLabelMsg {
		size := int(b[1])
		if size < 1 || len(b) < 2+size {
			return v, false
		}
		v.label, b = b[:2+size], b[2+size:]
	}
	if len(b) >= 5 && b[0] == mlHasCrcMsg {
		if crc32.ChecksumIEEE(b[5:]) != binary.BigEndian.Uint32(b[1:5]) {
			return v, false
		}
		v.crc, b = true, b[5:]
	}
	if len(b) < 1 {
		return v, false
	}
	if b[0] != mlCompoundMsg {
		v.parts = [][]byte{b}
		return v, true
	}
	v.compound = true
	b = b[1:]
	if len(b) < 1 {
		return v, false
	}
	count := int(b[0])
	b = b[1:]
	if len(b) < 2*count {
		return v, false
	}
	lens := b[:2*count]
	b = b[2*count:]
	for i := range count {
		l := int(binary.BigEndian.Uint16(lens[2*i:]))
		if len(b) < l {
			return v, false // truncated: memberlist would log it; leave it
		}
		v.parts = append(v.parts, b[:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return v, false
	}
	return v, true
}

// build encodes the view back into a packet.
func (v packetView) build() []byte {
	var body []byte
	if v.compound {
		size := 2 + 2*len(v.parts)
		for _, p := range v.parts {
			size += len(p)
		}
		body = make([]byte, 0, size)
		body = append(body, mlCompoundMsg, byte(len(v.parts)))
		for _, p := range v.parts {
			body = binary.BigEndian.AppendUint16(body, uint16(len(p)))
		}
		for _, p := range v.parts {
			body = append(body, p...)
		}
	} else {
		body = v.parts[0]
	}
	out := make([]byte, 0, len(v.label)+5+len(body))
	out = append(out, v.label...)
	if v.crc {
		out = append(out, mlHasCrcMsg)
		out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
	}
	return append(out, body...)
}

// aliveSubject returns the Node field of a msgpack-encoded alive message
// (memberlist encodes its alive struct as a map keyed by field names), or
// "" if b is not such a map.
func aliveSubject(b []byte) string {
	r := mpReader{b: b}
	n, ok := r.mapLen()
	if !ok {
		return ""
	}
	for range n {
		key, ok := r.str()
		if !ok {
			return ""
		}
		if key == "Node" {
			name, ok := r.str()
			if !ok {
				return ""
			}
			return name
		}
		if !r.skip() {
			return ""
		}
	}
	return ""
}

// mpReader reads the few msgpack types an alive message uses.
type mpReader struct {
	b []byte
	i int
}

func (r *mpReader) need(k int) bool { return r.i+k <= len(r.b) }

func (r *mpReader) uint(k int) (int, bool) {
	if !r.need(k) {
		return 0, false
	}
	v := 0
	for j := range k {
		v = v<<8 | int(r.b[r.i+j])
	}
	r.i += k
	return v, true
}

func (r *mpReader) mapLen() (int, bool) {
	if !r.need(1) {
		return 0, false
	}
	c := r.b[r.i]
	r.i++
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), true
	case c == 0xde:
		return r.uint(2)
	}
	return 0, false
}

// rawLen reads the header of a str or bin value and returns its length.
func (r *mpReader) rawLen() (int, bool) {
	if !r.need(1) {
		return 0, false
	}
	c := r.b[r.i]
	r.i++
	switch {
	case c&0xe0 == 0xa0:
		return int(c & 0x1f), true
	case c == 0xd9 || c == 0xc4:
		return r.uint(1)
	case c == 0xda || c == 0xc5:
		return r.uint(2)
	case c == 0xdb || c == 0xc6:
		return r.uint(4)
	}
	return 0, false
}

func (r *mpReader) str() (string, bool) {
	l, ok := r.rawLen()
	if !ok || !r.need(l) {
		return "", false
	}
	s := string(r.b[r.i : r.i+l])
	r.i += l
	return s, true
}

// skip skips one scalar, str or bin value.
func (r *mpReader) skip() bool {
	if !r.need(1) {
		return false
	}
	c := r.b[r.i]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		r.i++
		return true
	case c == 0xcc || c == 0xd0:
		r.i++
		_, ok := r.uint(1)
		return ok
	case c == 0xcd || c == 0xd1:
		r.i++
		_, ok := r.uint(2)
		return ok
	case c == 0xce || c == 0xd2:
		r.i++
		_, ok := r.uint(4)
		return ok
	case c == 0xcf || c == 0xd3:
		r.i++
		return r.need(8) && func() bool { r.i += 8; return true }()
	}
	l, ok := r.rawLen()
	if !ok || !r.need(l) {
		return false
	}
	r.i += l
	return true
}
