package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/ramd/ramd/election"
)

// The daemon's side of the pglock backend: daemon/pglock.go's lockExec
// and election/pglock's Client, as far as they decide what a LockNode is
// told. Two connections, each running one operation at a time in FIFO
// order: the lock session (TryLock, Revoke, Read, Promote) and the worker
// (Renew, Release, other commands). An operation that gets no answer
// within opTimeout (the client's OpTimeout: a context deadline) is an
// Unreachable outcome and closes its connection, as pglock.Client.with
// does with any error that is not an SQL answer; closing the lock
// session gives the lock up (locked = false), and the server frees it
// when the FIN arrives or its timers run out.
//
// Simplification: Read runs on the lock session even when this daemon
// does not hold the lock (the real client then uses the worker). Both
// connections reach the same server over the same links, so only which
// session's idle timer a read refreshes differs, and TryLock refreshes
// the lock session every renew interval anyway.
type lockClient struct {
	epoch  uint64
	conns  [2]lockConn
	locked bool
	// results wait for handleReady, which feeds them to the LockNode
	// between Readys (never in the middle of carrying one out).
	results []election.LockResult
}

type lockConn struct {
	gen       uint64 // the connection's generation; 0: not connected
	confirmed bool   // the server answered on it (it has a session)
	nextGen   uint64
	busy      *election.LockOp
	deadline  time.Duration // the daemon's clock
	queue     []election.LockOp
}

// lockQueue is the connection an operation runs on (lockExec.submit).
func lockQueue(op election.LockOp) int {
	switch op.Kind {
	case election.OpTryLock, election.OpRevoke, election.OpRead:
		return 0
	case election.OpApply:
		if op.Command != nil && op.Command.Type == election.CmdPromote {
			return 0
		}
	}
	return 1
}

// lockSubmit queues an operation of n's LockNode.
func (s *sim) lockSubmit(n *simNode, op election.LockOp) {
	c := &n.client.conns[lockQueue(op)]
	c.queue = append(c.queue, op)
	s.lockNext(n, lockQueue(op))
}

// lockNext starts the next queued operation of connection i if it is idle.
func (s *sim) lockNext(n *simNode, i int) {
	cl := n.client
	c := &cl.conns[i]
	for c.busy == nil && len(c.queue) > 0 {
		op := c.queue[0]
		c.queue = c.queue[1:]
		// Revoke and Promote check the client's belief first, without a
		// round trip (pglock.Client.Revoke / promote).
		if (op.Kind == election.OpRevoke || (op.Kind == election.OpApply && lockQueue(op) == 0)) && !cl.locked {
			s.lockResult(n, election.LockResult{Kind: op.Kind, Seq: op.Seq, NotHolder: true, Err: errDBNotHolder})
			continue
		}
		if c.gen == 0 {
			c.nextGen++
			c.gen, c.confirmed = c.nextGen, false
			if i == 0 {
				cl.locked = false // a new lock session holds nothing (Client.with)
			}
		}
		req := dbRequest{key: connKey{node: n.id, epoch: cl.epoch, conn: i, gen: c.gen}, connect: !c.confirmed, op: op, confirm: op.Kind == election.OpTryLock && cl.locked}
		c.busy, c.deadline = &op, n.clock.at(s.now)+s.opTimeout()
		s.net.send(s.now, packet{from: n.id, to: dbID, dbReq: &req})
	}
}

// opTimeout is daemon/pglock.go's OpTimeout.
func (s *sim) opTimeout() time.Duration {
	return max(2*s.cfg.leaseConfig().RenewInterval, time.Second)
}

// sessionTimeout is daemon/pglock.go's SessionTimeout.
func sessionTimeout(lc election.LeaseConfig) time.Duration {
	return max(lc.TTL+lc.RenewInterval, 2*time.Second)
}

// lockClose closes connection i (a FIN to the server, which may be lost).
func (s *sim) lockClose(n *simNode, i int) {
	c := &n.client.conns[i]
	if c.gen != 0 {
		s.net.send(s.now, packet{from: n.id, to: dbID, dbReq: &dbRequest{key: connKey{node: n.id, epoch: n.client.epoch, conn: i, gen: c.gen}, close: true}})
	}
	c.gen = 0
	if i == 0 {
		n.client.locked = false
	}
}

// lockTimeouts fails the operations whose deadline passed on n's clock.
func (s *sim) lockTimeouts(n *simNode) {
	for i := range n.client.conns {
		c := &n.client.conns[i]
		if c.busy == nil || n.clock.at(s.now) < c.deadline {
			continue
		}
		op := *c.busy
		c.busy = nil
		s.lockClose(n, i)
		s.lockResult(n, election.LockResult{Kind: op.Kind, Seq: op.Seq, Unreachable: true, Err: errors.New("sim: coordination db: timeout")})
		s.lockNext(n, i)
	}
	s.handleReady(n)
}

// lockReply takes the server's answer to n's operation.
func (s *sim) lockReply(n *simNode, rep dbReply) {
	cl := n.client
	k := rep.key
	if k.epoch != cl.epoch || k.conn < 0 || k.conn > 1 {
		return
	}
	c := &cl.conns[k.conn]
	if c.busy == nil || c.busy.Seq != rep.seq || c.gen != k.gen {
		return // a late answer on a connection closed since
	}
	op := *c.busy
	c.busy = nil
	c.confirmed = true
	r := lockOutcome(op, rep.out)
	switch {
	case errors.Is(rep.out.err, errDBConnLost):
		s.lockClose(n, k.conn) // already gone on the server; the FIN is harmless
	case op.Kind == election.OpTryLock:
		cl.locked = rep.out.ok && rep.out.err == nil
	case r.NotHolder:
		cl.locked = false
	}
	s.lockResult(n, r)
	s.lockNext(n, k.conn)
	s.handleReady(n)
}

// lockOutcome is daemon/pglock.go's lockExec.run: the server's outcome as
// a LockResult.
func lockOutcome(op election.LockOp, o dbOutcome) election.LockResult {
	r := election.LockResult{Kind: op.Kind, Seq: op.Seq}
	err := o.err
	if op.Kind == election.OpTryLock || op.Kind == election.OpRenew {
		r.OK = o.ok && err == nil
	}
	if o.hasRow || (err == nil && op.Kind == election.OpRead) {
		row := o.row
		r.Row = &row
	}
	switch {
	case err == nil:
		if op.Kind != election.OpTryLock && op.Kind != election.OpRenew {
			r.OK = true
		}
	case errors.Is(err, errDBConflict):
		r.Conflict, r.Err = true, err
	case errors.Is(err, errDBNotHolder):
		r.NotHolder, r.Err = true, err
	case errors.Is(err, election.ErrRejected), errors.Is(err, election.ErrStaleToken):
		r.Err = err
	default:
		// errDBConnLost, errDBNoRow and anything else the daemon does not
		// recognise as an SQL answer: Unreachable.
		r.Unreachable, r.Err = true, err
	}
	return r
}

func (s *sim) lockResult(n *simNode, r election.LockResult) {
	if r.NotHolder || r.Conflict { // Unreachable: LockNode's coordination-down event says it
		s.record(n.id, "db", fmt.Sprintf("%s #%d: %v", r.Kind, r.Seq, r.Err))
	}
	n.client.results = append(n.client.results, r)
}
