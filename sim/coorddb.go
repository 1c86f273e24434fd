package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/ramd/ramd/election"
)

// The coordination database of the pglock backend, as a simulated machine
// on the simulated network (address dbID). It holds what ramd.cluster
// holds for one cluster (token, primary, revoked, released, final, the
// lease on its own clock, the replicated state), the sessions daemons
// opened, and the session-level advisory lock (held by one session, freed
// when that session ends).
//
// The statements mirror election/pglock (ops.go) predicate for predicate;
// they are SQL there, so nothing can be shared: keep the two in step (each
// method below names the statement it mirrors). What it does not model:
// the history table, schema creation, statement_timeout/lock_timeout
// (operations here never block each other: a daemon sends one at a time
// per connection and the row lock is held only within one step).
//
// Sessions end when the client closes them (a FIN: it travels over the
// network and can be lost), when the server restarts, when an operator
// terminates them (pg_terminate_backend), and on the server's own timers:
// tcp_user_timeout/keepalives end a session whose client's host has not
// answered for sessionTimeout (cut off, or the process gone), and the lock
// session's idle_session_timeout ends it when no statement arrived for
// sessionTimeout (a frozen daemon). These are the settings
// election/pglock.Client.connect sets, with the daemon's SessionTimeout
// (daemon/pglock.go: TTL + renew interval, at least 2s).

// dbID is the coordination database's address on the simulated network
// (nodes are 1..9).
const dbID = 10

// DBBugs are deliberately broken statements, only for proving that the
// simulator catches what they break.
type DBBugs struct {
	// RenewIgnoresToken: the renewal UPDATE checks only primary_id, not
	// token/revoked/released (a revoked primary keeps renewing).
	RenewIgnoresToken bool
	// PromoteIgnoresLease: the promotion's compare-and-set does not
	// require lease_until < now() after a revoke.
	PromoteIgnoresLease bool
}

// Errors the simulated server answers with (they map onto
// election/pglock's and the daemon's classification, see lockclient.go).
var (
	errDBConflict  = errors.New("sim: coordination db: compare-and-set failed")
	errDBNotHolder = errors.New("sim: coordination db: this session does not hold the coordinator lock")
	errDBNoRow     = errors.New("sim: coordination db: no row for this cluster")
	// errDBConnLost: the session is gone (terminated, timed out, server
	// restarted): a FATAL error and a closed connection for the client.
	errDBConnLost = errors.New("sim: coordination db: terminating connection")
)

type dbRow struct {
	exists     bool
	state      election.ClusterState // state.Token and state.Primary are the token and primary_id columns
	revoked    uint64
	released   bool
	final      *election.Position
	leaseUntil time.Duration // on the database's clock
}

// connKey names one connection: of daemon node's incarnation epoch,
// connection conn (0: the lock session, 1: the worker), the gen-th time
// it was opened.
type connKey struct {
	node, epoch uint64
	conn        int
	gen         uint64
}

type dbSession struct {
	id        uint64
	key       connKey
	lastQuery time.Duration
	lastAlive time.Duration
}

// lockConn: the lock session (idle_session_timeout is set on it).
func (s *dbSession) lockConn() bool { return s.key.conn == 0 }

// dbRequest is one statement from a daemon (connect: open the
// connection first); close (no statement) is the client closing it.
type dbRequest struct {
	key     connKey
	connect bool
	close   bool
	op      election.LockOp
	// confirm: TryLock when the client believes it holds the lock (it
	// checks pg_locks instead of calling pg_try_advisory_lock).
	confirm bool
	execAt  time.Duration
}

// dbReply is the server's answer.
type dbReply struct {
	key connKey
	seq uint64
	out dbOutcome
}

type dbOutcome struct {
	row    election.LockRow
	hasRow bool
	ok     bool // TryLock: held; Renew: renewed
	err    error
}

// coordDB is the simulated coordination server.
type coordDB struct {
	clock          *clock
	ttl            time.Duration
	sessionTimeout time.Duration
	bugs           DBBugs

	up        bool
	downUntil time.Duration
	slowUntil time.Duration
	slowDelay time.Duration

	row      dbRow
	holder   uint64 // session holding the advisory lock (0: free)
	sessions map[uint64]*dbSession
	byKey    map[connKey]uint64
	nextSess uint64
	queue    []dbRequest // accepted, waiting to execute (slow)
	// closing: connections the client closed while a statement of theirs
	// was still executing; it completes (and commits), then the backend
	// finds the socket gone and exits.
	closing map[connKey]bool

	// onCommit is told of every committed Bootstrap/Promote (token and
	// the node it names) at the instant it commits.
	onCommit func(token, primary uint64)
}

func newCoordDB(c *clock, ttl, sessionTimeout time.Duration, bugs DBBugs) *coordDB {
	d := &coordDB{clock: c, ttl: ttl, sessionTimeout: sessionTimeout, bugs: bugs, up: true}
	d.reset()
	return d
}

func (d *coordDB) reset() {
	d.sessions, d.byKey, d.closing, d.holder, d.queue = map[uint64]*dbSession{}, map[connKey]uint64{}, map[connKey]bool{}, 0, nil
}

// slow reports whether statements are currently delayed.
func (d *coordDB) slow(now time.Duration) bool { return now < d.slowUntil }

// healthy: up and answering promptly.
func (d *coordDB) healthy(now time.Duration) bool { return d.up && !d.slow(now) }

// restart: every session and the lock are gone, statements in progress
// are lost; the row (committed) survives. The server is back after down.
func (d *coordDB) restart(now, down time.Duration) {
	d.up, d.downUntil = false, now+down
	d.reset()
}

// terminate ends one session (pg_terminate_backend).
func (d *coordDB) terminate(sid uint64) {
	s := d.sessions[sid]
	if s == nil {
		return
	}
	delete(d.sessions, sid)
	delete(d.byKey, s.key)
	delete(d.closing, s.key)
	if d.holder == sid {
		d.holder = 0
	}
	// A statement still executing dies with its backend (rolled back).
	d.queue = deleteReqs(d.queue, func(r dbRequest) bool { return r.key == s.key })
}

func (d *coordDB) queued(k connKey) bool {
	for _, r := range d.queue {
		if r.key == k {
			return true
		}
	}
	return false
}

// holderNode is the node whose session holds the lock (0: none).
func (d *coordDB) holderNode() uint64 {
	if s := d.sessions[d.holder]; s != nil {
		return s.key.node
	}
	return 0
}

func deleteReqs(q []dbRequest, del func(dbRequest) bool) []dbRequest {
	out := q[:0]
	for _, r := range q {
		if !del(r) {
			out = append(out, r)
		}
	}
	return out
}

// receive takes a request off the network. While the server is down the
// host refuses the connection at once (the client sees a broken
// connection, not a timeout); while it is slow the statement waits
// slowDelay before it executes.
func (d *coordDB) receive(now time.Duration, req dbRequest) (dbReply, bool) {
	if req.close {
		if !d.up {
			return dbReply{}, false
		}
		if d.queued(req.key) {
			d.closing[req.key] = true
		} else {
			d.terminate(d.byKey[req.key])
		}
		return dbReply{}, false
	}
	if !d.up {
		return dbReply{key: req.key, seq: req.op.Seq, out: dbOutcome{err: errDBConnLost}}, true
	}
	if s := d.sessions[d.byKey[req.key]]; s != nil {
		s.lastQuery, s.lastAlive = now, now // a statement arrived: not idle
	}
	if d.slow(now) {
		req.execAt = now + d.slowDelay
		d.queue = append(d.queue, req)
		return dbReply{}, false
	}
	return d.exec(now, req), true
}

// step advances the server to real time now: back up after a restart,
// statements whose delay is over execute (their replies are returned),
// sessions whose timers ran out end. alive reports whether the host of
// (node, epoch) answers keepalives right now (process alive and both
// directions of the link up).
func (d *coordDB) step(now time.Duration, alive func(node, epoch uint64) bool) []dbReply {
	if !d.up {
		if now < d.downUntil {
			return nil
		}
		d.up = true
	}
	var out []dbReply
	for len(d.queue) > 0 && d.queue[0].execAt <= now {
		req := d.queue[0]
		d.queue = d.queue[1:]
		rep := d.exec(now, req)
		if d.closing[req.key] {
			if !d.queued(req.key) {
				d.terminate(d.byKey[req.key]) // the answer finds the socket closed
			}
			continue
		}
		out = append(out, rep)
	}
	for id, s := range d.sessions {
		if alive(s.key.node, s.key.epoch) {
			s.lastAlive = now
		}
		if now-s.lastAlive > d.sessionTimeout || (s.lockConn() && !d.queued(s.key) && now-s.lastQuery > d.sessionTimeout) {
			d.terminate(id)
		}
	}
	return out
}

// exec runs one statement at real time now.
func (d *coordDB) exec(now time.Duration, req dbRequest) dbReply {
	rep := dbReply{key: req.key, seq: req.op.Seq}
	s := d.sessions[d.byKey[req.key]]
	switch {
	case s == nil && req.connect:
		d.nextSess++
		s = &dbSession{id: d.nextSess, key: req.key, lastQuery: now, lastAlive: now}
		d.sessions[s.id], d.byKey[req.key] = s, s.id
	case s == nil:
		rep.out.err = errDBConnLost // its session ended: the client learns it now
		return rep
	}
	rep.out = d.statement(d.clock.at(now), s, req)
	return rep
}

// row returns the row as election/pglock's rowColumns select it.
func (d *coordDB) lockRow(dbNow time.Duration) election.LockRow {
	r := d.row
	if !r.exists {
		return election.LockRow{}
	}
	var fin *election.Position
	if r.final != nil {
		f := *r.final
		fin = &f
	}
	return election.LockRow{Exists: true, State: r.state.Clone(), Revoked: r.revoked, Released: r.released, Final: fin,
		Remaining: r.leaseUntil - dbNow, Coordinator: d.holderNode()}
}

func (d *coordDB) withRow(dbNow time.Duration, o dbOutcome) dbOutcome {
	if d.row.exists {
		o.row, o.hasRow = d.lockRow(dbNow), true
	}
	return o
}

// statement mirrors one Client method of election/pglock.
func (d *coordDB) statement(dbNow time.Duration, s *dbSession, req dbRequest) dbOutcome {
	op := req.op
	r := &d.row
	switch op.Kind {
	case election.OpTryLock:
		// TryLock: SELECT holdsLockSQL (confirm) | pg_try_advisory_lock.
		if req.confirm {
			return dbOutcome{ok: d.holder == s.id}
		}
		if d.holder == 0 || d.holder == s.id {
			d.holder = s.id
			return dbOutcome{ok: true}
		}
		return dbOutcome{}
	case election.OpRead:
		return d.withRow(dbNow, dbOutcome{})
	case election.OpRenew:
		// Renew: UPDATE ... SET lease_until = greatest(lease_until, now() + TTL)
		// WHERE primary_id = self AND token = $3 AND revoked < token AND NOT released.
		ok := r.exists && r.state.Primary == req.key.node && r.state.Token == op.Token && r.revoked < r.state.Token && !r.released
		if d.bugs.RenewIgnoresToken {
			ok = r.exists && r.state.Primary == req.key.node
		}
		if ok {
			r.leaseUntil = max(r.leaseUntil, dbNow+d.ttl)
		}
		return d.withRow(dbNow, dbOutcome{ok: ok})
	case election.OpRelease:
		// Release: UPDATE ... SET released = true, lease_until = least(lease_until, now()),
		// final = coalesce($4, final) WHERE primary_id = self AND token = $3.
		if !(r.exists && r.state.Primary == req.key.node && r.state.Token == op.Token) {
			return d.withRow(dbNow, dbOutcome{err: fmt.Errorf("%w: token %d of node %d is not the current one", errDBConflict, op.Token, req.key.node)})
		}
		r.released, r.leaseUntil = true, min(r.leaseUntil, dbNow)
		if op.Final != nil {
			f := *op.Final
			r.final = &f
		}
		return d.withRow(dbNow, dbOutcome{})
	case election.OpRevoke:
		// Revoke: holdsLockSQL, then UPDATE ... SET revoked = greatest(revoked, $2) WHERE token = $2.
		if d.holder != s.id {
			return dbOutcome{err: errDBNotHolder}
		}
		if !r.exists || r.state.Token != op.Token {
			return d.withRow(dbNow, dbOutcome{err: fmt.Errorf("%w: revoke of token %d", errDBConflict, op.Token)})
		}
		r.revoked = max(r.revoked, op.Token)
		return d.withRow(dbNow, dbOutcome{})
	case election.OpApply:
		if op.Command == nil {
			return dbOutcome{err: errors.New("sim: apply without a command")}
		}
		switch op.Command.Type {
		case election.CmdBootstrap:
			return d.bootstrap(dbNow, *op.Command)
		case election.CmdPromote:
			return d.promote(dbNow, s, *op.Command)
		}
		// Apply: SELECT ... FOR UPDATE; ApplyLocked; UPDATE state WHERE token = cur.
		if !r.exists {
			return dbOutcome{err: errDBNoRow}
		}
		st := r.state.Clone()
		if err := election.ApplyLocked(&st, *op.Command); err != nil {
			return d.withRow(dbNow, dbOutcome{err: err})
		}
		r.state = st
		return d.withRow(dbNow, dbOutcome{})
	}
	return dbOutcome{err: fmt.Errorf("sim: unknown operation %v", op.Kind)}
}

// bootstrap mirrors Client.bootstrap: INSERT ... ON CONFLICT DO NOTHING.
func (d *coordDB) bootstrap(dbNow time.Duration, cmd election.Command) dbOutcome {
	var st election.ClusterState
	if err := election.ApplyLocked(&st, cmd); err != nil {
		return dbOutcome{err: err}
	}
	if d.row.exists {
		cur := d.row.state
		return d.withRow(dbNow, dbOutcome{err: fmt.Errorf("%w: already bootstrapped (primary %d, token %d)", election.ErrRejected, cur.Primary, cur.Token)})
	}
	d.row = dbRow{exists: true, state: st, leaseUntil: dbNow + d.ttl}
	if d.onCommit != nil {
		d.onCommit(st.Token, st.Primary)
	}
	return d.withRow(dbNow, dbOutcome{})
}

// promote mirrors Client.promote: in one transaction on the lock session,
// check the lock, then the compare-and-set
//
//	UPDATE ... SET token = $3, primary_id = $4, revoked = 0, released = false, final = NULL,
//	    lease_until = now() + TTL, state = $6
//	WHERE token = $2 AND (released OR (revoked >= token AND lease_until < now()))
func (d *coordDB) promote(dbNow time.Duration, s *dbSession, cmd election.Command) dbOutcome {
	p := cmd.Promote
	if p == nil || p.Token == 0 {
		return dbOutcome{err: fmt.Errorf("%w: promote without a token", election.ErrRejected)}
	}
	if d.holder != s.id {
		return dbOutcome{err: errDBNotHolder}
	}
	r := &d.row
	if !r.exists {
		return dbOutcome{err: errDBNoRow}
	}
	st := r.state.Clone()
	if err := election.ApplyLocked(&st, cmd); err != nil {
		return d.withRow(dbNow, dbOutcome{err: err})
	}
	old := p.Token - 1
	over := r.leaseUntil < dbNow || d.bugs.PromoteIgnoresLease
	if !(r.state.Token == old && (r.released || (r.revoked >= r.state.Token && over))) {
		return d.withRow(dbNow, dbOutcome{err: fmt.Errorf("%w: promote to token %d: the row has token %d (revoked %d, released %v, lease remaining %v)",
			errDBConflict, p.Token, r.state.Token, r.revoked, r.released, r.leaseUntil-dbNow)})
	}
	*r = dbRow{exists: true, state: st, leaseUntil: dbNow + d.ttl}
	if d.onCommit != nil {
		d.onCommit(st.Token, st.Primary)
	}
	return d.withRow(dbNow, dbOutcome{})
}
