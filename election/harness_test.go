package election

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// harness runs N Nodes in one goroutine with a controllable network and
// one logical clock, like raft's rafttest.InteractionEnv. Every node ticks
// in lockstep; delivery happens between ticks. After every step it checks
// the safety invariant: never two nodes holding a valid lease at once, and
// no lease under an older token alive when a newer token is applied.
type harness struct {
	t         testing.TB
	base      Config
	nodes     map[uint64]*Node // nil: crashed
	ids       []uint64
	persisted map[uint64]*Persisted
	queue     []Message
	now       time.Duration
	cut       map[uint64]bool // isolated nodes
	out       *strings.Builder
	maxToken  uint64
	quiet     bool // print only actions
	// sent counts the non-raft messages each node sent (the sent command
	// prints and resets them).
	sent map[uint64]map[MsgType]int
}

func testConfig() Config {
	return Config{
		ElectionTick:  100, // elections only when a test asks (deterministic)
		HeartbeatTick: 1,
		TickInterval:  100 * time.Millisecond,
		Lease:         LeaseConfig{TTL: 2 * time.Second, RenewInterval: 500 * time.Millisecond, MaxDrift: 0.01, Safety: 100 * time.Millisecond},
	}
}

func newHarness(t testing.TB, base Config, n int) *harness {
	h := &harness{t: t, base: base, nodes: map[uint64]*Node{}, persisted: map[uint64]*Persisted{}, cut: map[uint64]bool{}, out: &strings.Builder{}, sent: map[uint64]map[MsgType]int{}}
	var peers []uint64
	for i := 1; i <= n; i++ {
		peers = append(peers, uint64(i))
	}
	for _, id := range peers {
		c := base
		c.ID, c.Peers, c.Start = id, peers, h.now
		nd, err := NewNode(c)
		if err != nil {
			t.Fatal(err)
		}
		h.nodes[id] = nd
		h.ids = append(h.ids, id)
		h.persisted[id] = &Persisted{}
	}
	return h
}

func (h *harness) printf(format string, args ...any) { fmt.Fprintf(h.out, format, args...) }

// processReady handles one node's Ready the way the daemon must, and
// records exactly what it was asked to persist.
func (h *harness) processReady(id uint64) {
	n := h.nodes[id]
	rd := n.Ready()
	p := h.persisted[id]
	if rd.HardState != nil {
		p.HardState = rd.HardState
	}
	if rd.Snapshot != nil {
		p.Snapshot, p.Entries = rd.Snapshot, nil
	}
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].GetIndex()
		p.Entries = slices.DeleteFunc(p.Entries, func(e *pb.Entry) bool { return e.GetIndex() >= first })
		p.Entries = append(p.Entries, rd.Entries...)
	}
	if rd.RevokedChanged {
		p.Revoked = rd.Revoked
	}
	for _, e := range rd.Events {
		if !h.quiet && e.Kind != "start" && e.Kind != "membership" {
			h.printf("%v n%d event %s\n", e.At, id, e)
		}
	}
	for _, a := range rd.Actions {
		h.printf("%v n%d action %s\n", n.Now(), id, a)
	}
	h.queue = append(h.queue, rd.Messages...)
	for _, m := range rd.Messages {
		if m.Type != MsgRaft {
			if h.sent[id] == nil {
				h.sent[id] = map[MsgType]int{}
			}
			h.sent[id][m.Type]++
		}
	}
	n.Advance()
	if rd.State != nil && rd.State.Token > h.maxToken {
		h.maxToken = rd.State.Token
		for _, oid := range h.ids {
			if o := h.nodes[oid]; o != nil && o.LeaseValid() && o.holder.Token() < rd.State.Token {
				h.t.Fatalf("%v: token %d applied on n%d while n%d still holds a lease for token %d until %v", h.now, rd.State.Token, id, oid, o.holder.Token(), o.LeaseExpiry())
			}
		}
	}
	h.checkInvariant()
}

func (h *harness) checkInvariant() {
	var holders []uint64
	for _, id := range h.ids {
		if n := h.nodes[id]; n != nil && n.LeaseValid() {
			holders = append(holders, id)
		}
	}
	if len(holders) > 1 {
		h.t.Fatalf("%v: nodes %v hold a valid lease at the same time", h.now, holders)
	}
}

func (h *harness) deliver() {
	q := h.queue
	h.queue = nil
	for _, m := range q {
		to := h.nodes[m.To]
		if to == nil || h.nodes[m.From] == nil || h.cut[m.To] || h.cut[m.From] {
			continue
		}
		// Exercise the wire format on every message.
		b, err := m.Encode()
		if err != nil {
			h.t.Fatal(err)
		}
		m2, err := DecodeMessage(b)
		if err != nil {
			h.t.Fatal(err)
		}
		_ = to.Step(m2) // rejected messages are dropped, as on a network
	}
}

func (h *harness) stabilize() {
	for i := 0; i < 1000; i++ {
		busy := len(h.queue) > 0
		for _, id := range h.ids {
			if n := h.nodes[id]; n != nil && n.HasReady() {
				h.processReady(id)
				busy = true
			}
		}
		h.deliver()
		if !busy {
			return
		}
	}
	h.t.Fatal("harness: no quiescence after 1000 rounds")
}

func (h *harness) tick(k int) {
	for i := 0; i < k; i++ {
		h.now += h.base.TickInterval
		for _, id := range h.ids {
			if n := h.nodes[id]; n != nil {
				n.Tick()
			}
		}
		h.checkInvariant()
		h.stabilize()
	}
}

func (h *harness) crash(id uint64) { h.nodes[id] = nil }

// restart brings a node back with only what it was asked to persist.
func (h *harness) restart(id uint64) {
	p := *h.persisted[id]
	p.Entries = slices.Clone(p.Entries)
	c := h.base
	c.ID, c.Start, c.Restart = id, h.now, &p
	n, err := NewNode(c)
	if err != nil {
		h.t.Fatal(err)
	}
	h.nodes[id] = n
}

// elect makes id the raft leader deterministically: the others forget
// their leader (so PreVote/CheckQuorum do not hold them back) and id
// campaigns.
func (h *harness) elect(id uint64) {
	for _, o := range h.ids {
		if n := h.nodes[o]; n != nil && o != id && !h.cut[o] {
			_ = n.rn.ForgetLeader()
		}
	}
	h.stabilize()
	if err := h.nodes[id].Campaign(); err != nil {
		h.t.Fatal(err)
	}
	h.stabilize()
}

func (h *harness) leader() *Node {
	for _, id := range h.ids {
		if n := h.nodes[id]; n != nil && n.IsLeader() && !h.cut[id] {
			return n
		}
	}
	h.t.Fatal("no leader")
	return nil
}

// sentBy prints and resets the counts of non-raft messages id sent.
func (h *harness) sentBy(id uint64) string {
	var kinds []string
	for k, c := range h.sent[id] {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, c))
	}
	slices.Sort(kinds)
	delete(h.sent, id)
	if len(kinds) == 0 {
		return fmt.Sprintf("n%d sent nothing", id)
	}
	return fmt.Sprintf("n%d sent %s", id, strings.Join(kinds, " "))
}

func (h *harness) status() string {
	var b strings.Builder
	for _, id := range h.ids {
		n := h.nodes[id]
		if n == nil {
			fmt.Fprintf(&b, "n%d: down\n", id)
			continue
		}
		st := n.State()
		fmt.Fprintf(&b, "n%d: primary=%d token=%d voters=%v maint=%v leader=%d lease=%v revoked=%d", id, st.Primary, st.Token, st.Voters, st.Maintenance, n.Leader(), n.LeaseValid(), n.grantor.Revoked())
		if ph := n.FailoverPhase(); ph != "" {
			fmt.Fprintf(&b, " failover=%q", ph)
		}
		if h.cut[id] {
			b.WriteString(" (isolated)")
		}
		b.WriteString("\n")
	}
	return b.String()
}
