package mesh

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects the memberlist logs of several nodes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAliveFilterKeepsPacketsValid forms a 12-node cluster of real
// memberlists with the filter on and checks every packet the filter
// handled: a rewritten packet still parses as memberlist reads it (label,
// CRC, compound count and lengths), keeps every part but dropped ones in
// order, and a dropped part is an alive message about another node that
// the same receiver already got byte for byte. memberlist must log no
// decode or checksum error, and the cluster must converge and spread a
// state broadcast.
func TestAliveFilterKeepsPacketsValid(t *testing.T) {
	const n = 12
	netw := NewNetwork(Link{}, 1, n)
	netw.EnableAliveFilter()
	var mu sync.Mutex
	seen := make(map[string]map[string]bool) // receiver -> alive parts delivered
	var problems []string
	var rewritten, dropped int
	netw.filterTap = func(dst *Transport, sent, delivered []byte) {
		mu.Lock()
		defer mu.Unlock()
		bad := func(format string, args ...any) {
			if len(problems) < 10 {
				problems = append(problems, dst.name+": "+fmt.Sprintf(format, args...))
			}
		}
		in, ok := splitPacket(sent)
		if !ok {
			bad("memberlist sent a packet the filter cannot split: %x", sent)
			return
		}
		if seen[dst.name] == nil {
			seen[dst.name] = make(map[string]bool)
		}
		var kept [][]byte
		switch {
		case delivered == nil:
			dropped++
		case bytes.Equal(delivered, sent):
			kept = in.parts
		default:
			rewritten++
			out, ok := splitPacket(delivered) // also verifies the CRC
			if !ok {
				bad("rewritten packet does not parse: %x", delivered)
				return
			}
			if !bytes.Equal(out.label, in.label) || out.crc != in.crc || out.compound != in.compound {
				bad("rewritten packet changed its headers")
			}
			if in.crc {
				if got := binary.BigEndian.Uint32(delivered[len(out.label)+1:]); got != crc32.ChecksumIEEE(delivered[len(out.label)+5:]) {
					bad("wrong CRC")
				}
			}
			kept = out.parts
		}
		// kept must be in.parts minus some alive parts, in order.
		k := 0
		for _, p := range in.parts {
			if k < len(kept) && bytes.Equal(kept[k], p) {
				k++
				if p[0] == mlAliveMsg {
					seen[dst.name][string(p)] = true
				}
				continue
			}
			switch {
			case p[0] != mlAliveMsg:
				bad("dropped a part of type %d", p[0])
			case aliveSubject(p[1:]) == dst.name:
				bad("dropped an alive message about the receiver itself")
			case !seen[dst.name][string(p)]:
				bad("dropped an alive message the receiver never got: %x", p)
			}
		}
		if k != len(kept) {
			bad("delivered parts that were not sent")
		}
	}
	logs := &lockedBuffer{}
	rec := newRecorder(n)
	tm := TimingsFor(n)
	seeds := []int{0}
	nodes := make([]*node, n)
	for i := range nodes {
		nd, err := newNode(i, netw, tm, rec, seeds, logs)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
		defer nd.shutdown()
	}
	for _, nd := range nodes[1:] {
		if _, err := nd.ml.Join([]string{nodes[0].tr.Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	converged := func() bool {
		for _, nd := range nodes {
			if nd.live.Load() != n {
				return false
			}
		}
		return true
	}
	waitFor(t, 30*time.Second, "every node sees every node", converged)
	// A metadata change is an alive message with a new incarnation: it
	// must get through the filter to every node.
	meta := []byte("v=filter-test")
	rec.metaSubj.Store(3)
	rec.metaWant.Store(&meta)
	if err := nodes[3].setMeta(meta); err != nil {
		t.Fatal(err)
	}
	rec.stateSubj.Store(5)
	rec.stateWant.Store(1)
	nodes[5].broadcastState()
	waitFor(t, 30*time.Second, "metadata and state reach every node", func() bool {
		for i, nd := range nodes {
			if i != 3 && rec.metaSeen[nd.idx].Load() == 0 || i != 5 && rec.stateSeen[nd.idx].Load() == 0 {
				return false
			}
		}
		return true
	})
	// Let the retransmits run out, so duplicates certainly arrive.
	time.Sleep(3 * time.Second)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	st := netw.Stats()
	t.Logf("filter: %d alive messages dropped, %d packets rewritten, %d not delivered, %d markers, longest marker wait %v",
		st.FilteredAlive, rewritten, dropped, st.Markers, st.MarkerMaxWait)
	if st.FilteredAlive == 0 || rewritten+dropped == 0 || st.Markers == 0 {
		t.Errorf("the filter dropped nothing in a formation of %d nodes: %+v", n, st)
	}
	for _, bad := range []string{"[ERR]", "checksum", "truncated", "Failed to decode"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("memberlist logged %q:\n%s", bad, grepLines(logs.String(), bad))
		}
	}
	if !converged() {
		t.Error("cluster no longer converged")
	}
}

// TestSplitPacket checks the packet format the filter relies on against
// hand-made packets, and that what it does not understand is left alone.
func TestSplitPacket(t *testing.T) {
	parts := [][]byte{{0, 1, 2}, {mlAliveMsg, 0x81, 0xa4, 'N', 'o', 'd', 'e', 0xa5, 'n', '0', '0', '0', '7'}, {mlUserMsg, 's'}}
	var body []byte
	body = append(body, mlCompoundMsg, byte(len(parts)))
	for _, p := range parts {
		body = binary.BigEndian.AppendUint16(body, uint16(len(p)))
	}
	for _, p := range parts {
		body = append(body, p...)
	}
	pkt := []byte{mlHasLabelMsg, 3, 'a', 'b', 'c', mlHasCrcMsg}
	pkt = binary.BigEndian.AppendUint32(pkt, crc32.ChecksumIEEE(body))
	pkt = append(pkt, body...)
	v, ok := splitPacket(pkt)
	if !ok || string(v.label) != "\xf4\x03abc" || !v.crc || !v.compound || len(v.parts) != 3 {
		t.Fatalf("split: %+v %v", v, ok)
	}
	if !bytes.Equal(v.build(), pkt) {
		t.Error("rebuild of an unchanged packet differs")
	}
	if got := aliveSubject(v.parts[1][1:]); got != "n0007" {
		t.Errorf("alive subject %q", got)
	}
	v.parts = [][]byte{parts[0], parts[2]}
	w, ok := splitPacket(v.build())
	if !ok || len(w.parts) != 2 || !bytes.Equal(w.parts[1], parts[2]) {
		t.Errorf("rebuilt packet: %+v %v", w, ok)
	}
	bad := append([]byte(nil), pkt...)
	bad[len(bad)-1] ^= 1 // CRC no longer matches
	truncated := pkt[:len(pkt)-1]
	for name, b := range map[string][]byte{"bad crc": bad, "truncated": truncated, "empty": nil} {
		if _, ok := splitPacket(b); ok {
			t.Errorf("%s: split, want left alone", name)
		}
	}
	f := newAliveFilter(1, 10)
	if out, _, d := f.filter(bad); d != 0 || !bytes.Equal(out, bad) {
		t.Error("a packet the filter cannot split was changed")
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && len(out) < 5 {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
