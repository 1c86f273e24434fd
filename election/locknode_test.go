package election

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeDB is the coordination database's semantics (election/pglock's SQL,
// tested against a real PostgreSQL in election/pglock) in memory, on the
// harness's global clock, for unit tests of LockNode's pure logic.
type fakeDB struct {
	now        *time.Duration
	ttl        time.Duration
	down       bool
	holder     uint64
	exists     bool
	st         ClusterState
	revoked    uint64
	released   bool
	final      *Position
	leaseUntil time.Duration
}

func (db *fakeDB) row() *LockRow {
	if !db.exists {
		return &LockRow{}
	}
	return &LockRow{Exists: true, State: db.st.Clone(), Revoked: db.revoked, Released: db.released, Final: db.final, Remaining: db.leaseUntil - *db.now, Coordinator: db.holder}
}

func (db *fakeDB) run(id uint64, op LockOp) LockResult {
	r := LockResult{Kind: op.Kind, Seq: op.Seq}
	if db.down {
		r.Unreachable, r.Err = true, errors.New("connection refused")
		return r
	}
	now := *db.now
	switch op.Kind {
	case OpTryLock:
		if db.holder == 0 || db.holder == id {
			db.holder, r.OK = id, true
		}
		return r
	case OpRead:
	case OpRenew:
		if db.exists && db.st.Primary == id && db.st.Token == op.Token && db.revoked < op.Token && !db.released {
			db.leaseUntil, r.OK = max(db.leaseUntil, now+db.ttl), true
		}
	case OpRelease:
		if db.exists && db.st.Primary == id && db.st.Token == op.Token {
			db.released, db.leaseUntil, r.OK = true, min(db.leaseUntil, now), true
			if op.Final != nil {
				db.final = op.Final
			}
		} else {
			r.Conflict, r.Err = true, errors.New("not current")
		}
	case OpRevoke:
		switch {
		case db.holder != id:
			r.NotHolder, r.Err = true, errors.New("not holder")
		case db.st.Token != op.Token:
			r.Conflict, r.Err = true, errors.New("token changed")
		default:
			db.revoked, r.OK = max(db.revoked, op.Token), true
		}
	case OpApply:
		c := *op.Command
		if c.Type == CmdBootstrap {
			if db.exists {
				r.Err = fmt.Errorf("%w: already bootstrapped", ErrRejected)
				break
			}
			st := ClusterState{}
			if err := ApplyLocked(&st, c); err != nil {
				r.Err = err
				break
			}
			db.exists, db.st, db.leaseUntil, r.OK = true, st, now+db.ttl, true
			break
		}
		if !db.exists {
			r.Err = errors.New("no row")
			break
		}
		st := db.st.Clone()
		if c.Type == CmdPromote && db.holder != id {
			r.NotHolder, r.Err = true, errors.New("not holder")
			break
		}
		if err := ApplyLocked(&st, c); err != nil {
			r.Err = err
			break
		}
		if c.Type == CmdPromote {
			if !(db.released || (db.revoked >= db.st.Token && db.leaseUntil < now)) {
				r.Conflict, r.Err = true, errors.New("lease not over")
				break
			}
			db.revoked, db.released, db.final, db.leaseUntil = 0, false, nil, now+db.ttl
		}
		db.st, r.OK = st, true
	}
	r.Row = db.row()
	return r
}

// lockHarness runs LockNodes against a fakeDB: every operation a node asks
// for runs at the next tick (after it was sent), messages arrive at once.
type lockHarness struct {
	t       *testing.T
	now     time.Duration
	db      *fakeDB
	nodes   map[uint64]*LockNode
	order   []uint64
	pending map[uint64][]LockOp
	crashed map[uint64]bool
	local   map[uint64]Local
	events  []string
	// drop lists message types the network loses.
	drop map[MsgType]bool
}

func newLockHarness(t *testing.T, ids ...uint64) *lockHarness {
	h := &lockHarness{t: t, nodes: map[uint64]*LockNode{}, pending: map[uint64][]LockOp{}, crashed: map[uint64]bool{}, local: map[uint64]Local{}}
	lc := LeaseConfig{TTL: 2 * time.Second, RenewInterval: 500 * time.Millisecond, MaxDrift: 0.01, Safety: 100 * time.Millisecond}
	h.db = &fakeDB{now: &h.now, ttl: lc.TTL}
	for _, id := range ids {
		n, err := NewLockNode(LockConfig{ID: id, Lease: lc, Start: h.now})
		if err != nil {
			t.Fatal(err)
		}
		h.nodes[id] = n
		h.order = append(h.order, id)
		h.local[id] = Local{Healthy: true, Position: Position{Timeline: 1, LSN: 100}}
		h.drain(id)
	}
	return h
}

// drain takes a node's Ready: ops queued, messages delivered.
func (h *lockHarness) drain(id uint64) {
	n := h.nodes[id]
	for n.HasReady() {
		rd := n.Ready()
		h.pending[id] = append(h.pending[id], rd.Ops...)
		for _, e := range rd.Events {
			h.events = append(h.events, fmt.Sprintf("%v n%d %s: %s", h.now, id, e.Kind, e.Reason))
		}
		for _, m := range rd.Messages {
			if h.crashed[m.To] || h.crashed[id] || h.drop[m.Type] {
				continue
			}
			if to, ok := h.nodes[m.To]; ok {
				_ = to.Step(m)
				h.drain(m.To)
			}
		}
	}
}

func (h *lockHarness) step() {
	h.now += 100 * time.Millisecond
	for _, id := range h.order {
		if h.crashed[id] {
			h.pending[id] = nil
			continue
		}
		n := h.nodes[id]
		ops := h.pending[id]
		h.pending[id] = nil
		for _, op := range ops {
			n.OnResult(h.db.run(id, op))
		}
		n.SetLocal(h.local[id])
		n.Tick()
		h.drain(id)
	}
	h.check()
}

// check: never two valid leases, and a valid lease never outlives the
// database's lease of the current token.
func (h *lockHarness) check() {
	var holders []uint64
	for _, id := range h.order {
		n := h.nodes[id]
		if h.crashed[id] || !n.LeaseValid() {
			continue
		}
		holders = append(holders, id)
		if n.leaseToken != h.db.st.Token {
			h.t.Fatalf("%v: node %d holds a lease for token %d, the database's token is %d", h.now, id, n.leaseToken, h.db.st.Token)
		}
		if n.leaseExpiry > h.db.leaseUntil {
			h.t.Fatalf("%v: node %d's lease runs to %v, the database's to %v", h.now, id, n.leaseExpiry, h.db.leaseUntil)
		}
	}
	if len(holders) > 1 {
		h.t.Fatalf("%v: two lease holders %v", h.now, holders)
	}
}

func (h *lockHarness) run(d time.Duration) {
	for end := h.now + d; h.now < end; {
		h.step()
	}
}

func (h *lockHarness) bootstrap(primary uint64) {
	h.run(time.Second)
	for _, id := range h.order {
		if h.nodes[id].IsLeader() {
			if err := h.nodes[id].ProposeBootstrap(primary); err != nil {
				h.t.Fatal(err)
			}
			h.drain(id)
			for _, other := range h.order {
				if other != id {
					_ = h.nodes[id].AddMember(other)
				}
				h.drain(id)
			}
		}
	}
	h.run(2 * time.Second)
	if !h.nodes[primary].LeaseValid() {
		h.t.Fatalf("primary %d holds no lease after bootstrap:\n%s", primary, h.log())
	}
}

func (h *lockHarness) log() string {
	s := ""
	for _, e := range h.events {
		s += e + "\n"
	}
	return s
}

func TestLockNodeFailoverAfterCrash(t *testing.T) {
	h := newLockHarness(t, 1, 2)
	h.bootstrap(1)
	if h.db.st.Token != 1 || len(h.db.st.Voters) != 2 {
		t.Fatalf("after bootstrap: %+v", h.db.st)
	}
	// The primary (which may hold the lock) crashes: the server ends its
	// session, so the lock is free.
	h.crashed[1] = true
	if h.db.holder == 1 {
		h.db.holder = 0
	}
	crashed := h.now
	h.run(6 * time.Second)
	if h.db.st.Token != 2 || h.db.st.Primary != 2 {
		t.Fatalf("no failover: %+v\n%s", h.db.st, h.log())
	}
	if !h.nodes[2].LeaseValid() {
		t.Fatalf("the new primary holds no lease\n%s", h.log())
	}
	rec := h.db.st.History[len(h.db.st.History)-1]
	t.Logf("crash at %v, promoted (logical time of the coordinator) at %v", crashed, rec.At)
}

func TestLockNodeReleaseSkipsWait(t *testing.T) {
	h := newLockHarness(t, 1, 2, 3)
	h.bootstrap(1)
	h.nodes[1].Release("test")
	h.drain(1)
	released := h.now
	for h.db.st.Token == 1 && h.now < released+5*time.Second {
		h.step()
	}
	if h.db.st.Token != 2 {
		t.Fatalf("no promotion after a release\n%s", h.log())
	}
	// No revoke, no lease wait: a few ticks.
	if d := h.now - released; d > time.Second {
		t.Fatalf("promotion took %v after the release\n%s", d, h.log())
	}
}

func TestLockNodeDatabaseDown(t *testing.T) {
	h := newLockHarness(t, 1, 2)
	h.bootstrap(1)
	h.db.down = true
	h.run(4 * time.Second)
	if h.nodes[1].LeaseValid() {
		t.Fatal("the primary kept its lease with the database unreachable")
	}
	for _, id := range h.order {
		if _, _, down := h.nodes[id].Unreachable(); !down {
			t.Fatalf("node %d does not report the database unreachable", id)
		}
	}
	h.db.down = false
	h.run(4 * time.Second)
	if h.db.st.Token != 1 || !h.nodes[1].LeaseValid() {
		t.Fatalf("after the outage: token %d, primary lease %v (want the same primary, renewing)\n%s", h.db.st.Token, h.nodes[1].LeaseValid(), h.log())
	}
}

func TestLockNodeRevokedPrimaryReleases(t *testing.T) {
	h := newLockHarness(t, 1, 2)
	h.bootstrap(1)
	// The detector on the coordinator says the primary failed although
	// it still renews (cut off from the mesh only): revoke, the primary's
	// renewals fail, its lease ends before the promotion.
	var coord uint64
	for _, id := range h.order {
		if h.nodes[id].IsLeader() {
			coord = id
		}
	}
	if coord == 1 {
		// Make 2 the coordinator (1's session ends).
		h.db.holder = 0
		h.nodes[1].locked = false
		h.db.holder = 2
		h.run(time.Second)
		coord = 2
	}
	h.nodes[coord].ReportPrimaryFailed("test: mesh says dead")
	h.drain(coord)
	h.run(6 * time.Second)
	if h.db.st.Token != 2 || h.db.st.Primary != 2 {
		t.Fatalf("no failover after the verdict: %+v\n%s", h.db.st, h.log())
	}
}

// TestLockNodeSwitchoverFinal: the old primary's final position is
// recorded with its release, so a coordinator that learns of the release
// from the row (the MsgRelease hint lost) still promotes only a replica
// beyond it — ignoring it loses acknowledged writes.
func TestLockNodeSwitchoverFinal(t *testing.T) {
	h := newLockHarness(t, 1, 2, 3)
	h.drop = map[MsgType]bool{MsgRelease: true}
	h.bootstrap(1)
	h.local[2] = Local{Healthy: true, Position: Position{Timeline: 1, LSN: 100}}
	h.local[3] = Local{Healthy: true, Position: Position{Timeline: 1, LSN: 120}}
	h.nodes[1].ReleaseAfterStop("switchover", Position{Timeline: 1, LSN: 150})
	h.drain(1)
	h.run(2 * time.Second)
	if h.db.st.Token != 1 {
		t.Fatalf("promoted node %d, which is behind the old primary's final record\n%s", h.db.st.Primary, h.log())
	}
	h.local[3] = Local{Healthy: true, Position: Position{Timeline: 1, LSN: 160}}
	h.run(2 * time.Second)
	if h.db.st.Token != 2 || h.db.st.Primary != 3 {
		t.Fatalf("want node 3 (beyond the final record) promoted: %+v\n%s", h.db.st, h.log())
	}
}

// TestLockNodeIgnoresOlderRow: answers on the lock session and on the
// worker arrive in any order, so a renewal's answer carrying the row as
// it was before a promotion can arrive after a read that showed the
// promotion. The node must not go back to the older token: it used to,
// and an old primary was then told to promote again under its superseded
// token (the simulator found it, sim TestPglockStaleRowRegression).
func TestLockNodeIgnoresOlderRow(t *testing.T) {
	n, err := NewLockNode(LockConfig{ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	rd := n.Ready()
	seq := func(k LockOpKind) uint64 {
		for _, op := range rd.Ops {
			if op.Kind == k {
				return op.Seq
			}
		}
		return 0
	}
	row := func(tok, primary, revoked uint64) *LockRow {
		return &LockRow{Exists: true, Revoked: revoked, Remaining: time.Second,
			State: ClusterState{Bootstrapped: true, Primary: primary, Token: tok, Voters: []uint64{1, 2}}}
	}
	n.OnResult(LockResult{Kind: OpRead, Seq: seq(OpRead), OK: true, Row: row(1, 1, 0)})
	rd = n.Ready()
	renew := seq(OpRenew)
	if renew == 0 || n.State().Token != 1 {
		t.Fatalf("primary under token 1 asks for no renewal: %+v", rd.Ops)
	}
	n.Tick()
	n.readNow()
	rd = n.Ready()
	n.OnResult(LockResult{Kind: OpRead, Seq: seq(OpRead), OK: true, Row: row(2, 2, 0)})
	n.Ready()
	// The renewal ran before the promotion (token 1 revoked), its answer
	// arrives now.
	n.OnResult(LockResult{Kind: OpRenew, Seq: renew, Row: row(1, 1, 1)})
	if st := n.State(); st.Token != 2 || st.Primary != 2 {
		t.Fatalf("state went back to token %d primary %d", st.Token, st.Primary)
	}
	for _, a := range n.Ready().Actions {
		if a.Kind == ActPromote || a.Kind == ActFence {
			t.Fatalf("stale row made the node act: %v", a)
		}
	}
}
