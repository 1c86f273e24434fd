package sim

import (
	"fmt"
	"time"

	"github.com/ramd/ramd/election"
)

// record is one WAL record: a client write or a promotion's
// end-of-recovery record. ids are unique in a run, so two WALs holding the
// same record at the same index share their whole prefix.
type record struct {
	id uint64
	tl uint32
	// tok is the writer token: the fencing token the writing primary was
	// promoted under (see election.Position.Token).
	tok uint64
	at  time.Duration // when the primary wrote it (real time)
}

type pgRole int

const (
	pgStopped pgRole = iota
	pgStandby
	pgPrimary
)

func (r pgRole) String() string { return [...]string{"stopped", "standby", "primary"}[r] }

type pgOp int

const (
	opNone pgOp = iota
	opStart
	opPromote
	opRewind
)

func (o pgOp) String() string { return [...]string{"", "start", "promote", "rewind"}[o] }

// pgModel is one node's PostgreSQL: its role, timeline and WAL, and one
// operation in progress (start, promote, rewind) that takes simulated
// time. The daemon glue sets what it wants (wantPrimary / upstream); step
// moves towards it. What it does not model: crash recovery time beyond a
// fixed start delay, WAL recycling (rewind always finds the fork point),
// replay lag separate from receive lag, cascading replication.
type pgModel struct {
	role pgRole
	wal  []record
	tl   uint32

	// What the daemon asked for: primary under token wantToken, or a
	// standby of upstream.
	wantPrimary bool
	wantToken   uint64
	upstream    uint64
	// writerToken is the token this server writes under as primary: the
	// wantToken of its last completed promotion.
	writerToken uint64

	op      pgOp
	opUntil time.Duration
	// lag is how far behind its upstream this standby receives WAL.
	lag time.Duration
}

func (p *pgModel) running() bool { return p.role != pgStopped }

// busy: an operation is in progress (the server is not serving).
func (p *pgModel) busy() bool { return p.op != opNone }

// position is where the WAL ends, with the writer token of its last
// record (0 for an empty WAL: nothing written under any token yet).
func (p *pgModel) position() election.Position {
	if len(p.wal) == 0 {
		return election.Position{Timeline: p.tl, LSN: 0, TokenKnown: true}
	}
	last := p.wal[len(p.wal)-1]
	return election.Position{Timeline: max(p.tl, last.tl), LSN: uint64(len(p.wal)), Token: last.tok, TokenKnown: true}
}

// stop is an immediate stop (fence): nothing in progress survives.
func (p *pgModel) stop() {
	p.role, p.op = pgStopped, opNone
}

// prefixOf reports whether p's WAL is a prefix of u's (it can stream
// from u without a rewind).
func (p *pgModel) prefixOf(u *pgModel) bool {
	n := len(p.wal)
	if n > len(u.wal) {
		return false
	}
	return n == 0 || u.wal[n-1].id == p.wal[n-1].id
}

// forkPoint is the length of the common prefix of p's and u's WAL.
func (p *pgModel) forkPoint(u *pgModel) int {
	n := min(len(p.wal), len(u.wal))
	for n > 0 && p.wal[n-1].id != u.wal[n-1].id {
		n--
	}
	return n
}

func (p *pgModel) String() string {
	s := fmt.Sprintf("%s tl=%d lsn=%d", p.role, p.position().Timeline, len(p.wal))
	if p.role == pgStandby {
		s += fmt.Sprintf(" upstream=%d", p.upstream)
	}
	if p.op != opNone {
		s += " " + p.op.String() + "…"
	}
	return s
}

// stepPG advances n's PostgreSQL by one simulation step: finish the
// operation in progress, stream WAL from the upstream, and (if the daemon
// is active) start the next operation towards what the daemon wants.
func (s *sim) stepPG(n *simNode) {
	p := &n.pg
	if p.op != opNone && s.now >= p.opUntil {
		op := p.op
		p.op = opNone
		switch op {
		case opStart:
			p.role = pgStandby
			s.record(n.id, "pg", "started as standby")
		case opPromote:
			p.role = pgPrimary
			p.tl = max(p.position().Timeline, p.tl) + 1
			p.writerToken = p.wantToken
			s.recID++
			p.wal = append(p.wal, record{id: s.recID, tl: p.tl, tok: p.writerToken, at: s.now})
			s.record(n.id, "pg", fmt.Sprintf("promoted: timeline %d at lsn %d (token %d)", p.tl, len(p.wal), p.writerToken))
		case opRewind:
			u := s.node(p.upstream)
			if u == nil || !s.pgReachable(n, u) {
				s.record(n.id, "pg", "rewind failed: source unreachable")
				break
			}
			fork := p.forkPoint(&u.pg)
			if fork < len(p.wal) {
				s.record(n.id, "pg", fmt.Sprintf("rewound: discarded lsn %d..%d (fork point %d)", fork+1, len(p.wal), fork))
			}
			p.wal = p.wal[:fork:fork]
		}
	}
	n.streaming = false
	if p.role == pgStandby && p.op == opNone {
		if u := s.node(p.upstream); u != nil && u.pg.role == pgPrimary && !u.pg.busy() && s.pgReachable(n, u) && p.prefixOf(&u.pg) {
			n.streaming = true
			for len(p.wal) < len(u.pg.wal) && u.pg.wal[len(p.wal)].at <= s.now-p.lag {
				p.wal = append(p.wal, u.pg.wal[len(p.wal)])
			}
		}
	}
	if p.op != opNone || !n.active(s.now) {
		return
	}
	delay := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(s.pgRng.Int64N(int64(hi-lo)+1)) }
	switch {
	case p.wantPrimary && p.role == pgStopped:
		p.op, p.opUntil = opStart, s.now+delay(200*time.Millisecond, 500*time.Millisecond)
	case p.wantPrimary && p.role == pgStandby:
		p.op, p.opUntil = opPromote, s.now+delay(100*time.Millisecond, time.Second)
		s.record(n.id, "pg", "promoting")
	case p.wantPrimary && p.writerToken != p.wantToken && p.wantToken > p.writerToken:
		// Promoted again while still running as primary (reclaim): the
		// daemon records the new writer token before writing under it.
		p.writerToken = p.wantToken
		s.record(n.id, "pg", fmt.Sprintf("primary again under token %d (same timeline %d)", p.writerToken, p.tl))
	case p.wantPrimary:
	case p.upstream == 0 || p.upstream == n.id:
		if p.role == pgStopped {
			p.op, p.opUntil = opStart, s.now+delay(200*time.Millisecond, 500*time.Millisecond)
		}
	default:
		u := s.node(p.upstream)
		ready := u.pg.role == pgPrimary && !u.pg.busy() && s.pgReachable(n, u)
		switch {
		case p.role == pgPrimary:
			p.stop() // a primary the cluster no longer names
			s.record(n.id, "pg", "stopped: no longer primary")
		case p.role == pgStopped && ready && !p.prefixOf(&u.pg):
			p.op, p.opUntil = opRewind, s.now+delay(500*time.Millisecond, 2*time.Second)
			s.record(n.id, "pg", fmt.Sprintf("rewinding against %d", u.id))
		case p.role == pgStopped:
			p.op, p.opUntil = opStart, s.now+delay(200*time.Millisecond, 500*time.Millisecond)
		case p.role == pgStandby && ready && !p.prefixOf(&u.pg):
			p.stop() // diverged: stop, then rewind
			s.record(n.id, "pg", fmt.Sprintf("diverged from %d: stopping to rewind", u.id))
		}
	}
}

// pgReachable: replication connections need both directions.
func (s *sim) pgReachable(a, b *simNode) bool {
	return s.net.connected(a.id, b.id) && s.net.connected(b.id, a.id)
}
