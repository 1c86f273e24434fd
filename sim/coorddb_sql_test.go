package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/election/pglock"
	"github.com/ramd/ramd/pg/pgtest"
)

// TestCoordDBAgreesWithSQL runs one table of operations against the
// simulated coordination database (coorddb.go, through the simulated
// client's checks and lockOutcome) and against election/pglock's real SQL
// on a real PostgreSQL (through the daemon's classification of errors),
// and requires the same LockResult from both: OK, Conflict, NotHolder,
// Unreachable, an error or not, and the row (token, primary, revoked,
// released, final, coordinator, and the sign of the remaining lease). The
// model mirrors the SQL by hand; this is what keeps the two in step.
func TestCoordDBAgreesWithSQL(t *testing.T) {
	const ttl = time.Second
	coord := pgtest.CoordinationServer(t)
	ctx := context.Background()
	real := map[uint64]*pglock.Client{}
	for _, id := range []uint64{1, 2} {
		c, err := pglock.Open(ctx, pglock.Config{DSN: coord.DSN, Cluster: "agree", NodeID: id, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		real[id] = c
	}
	admin, err := pgx.Connect(ctx, coord.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	start := time.Now()
	db := newCoordDB(newClock(0, 1), ttl, 5*time.Second, DBBugs{})
	model := map[uint64]*modelClient{1: {node: 1}, 2: {node: 2}}
	now := func() time.Duration { return time.Since(start) }

	bootstrap := func(p uint64) *election.Command {
		return &election.Command{Type: election.CmdBootstrap, Bootstrap: &election.BootstrapCmd{Primary: p, Voters: []uint64{1, 2}}}
	}
	promote := func(tok, old, nw uint64) *election.Command {
		return &election.Command{Type: election.CmdPromote, Promote: &election.PromoteCmd{Token: tok, Old: old, New: nw, Reason: "agree"}}
	}
	voter := func(typ election.CommandType, id uint64) *election.Command {
		return &election.Command{Type: typ, Voter: &election.VoterCmd{ID: id}}
	}
	final := &election.Position{Timeline: 3, LSN: 42, Token: 2, TokenKnown: true}
	type step struct {
		node uint64
		op   election.LockOp
		// special: "wait" for the lease to end, "kill" node's lock session.
		special string
	}
	steps := []step{
		{node: 1, op: election.LockOp{Kind: election.OpRead}},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: bootstrap(1)}},
		{node: 2, op: election.LockOp{Kind: election.OpApply, Command: bootstrap(2)}},
		{node: 1, op: election.LockOp{Kind: election.OpTryLock}},
		{node: 2, op: election.LockOp{Kind: election.OpTryLock}},
		{node: 1, op: election.LockOp{Kind: election.OpTryLock}}, // confirm
		{node: 2, op: election.LockOp{Kind: election.OpRevoke, Token: 1}},
		{node: 1, op: election.LockOp{Kind: election.OpRenew, Token: 1}},
		{node: 2, op: election.LockOp{Kind: election.OpRenew, Token: 1}},
		{node: 1, op: election.LockOp{Kind: election.OpRenew, Token: 2}},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(2, 1, 2)}}, // not revoked
		{node: 1, op: election.LockOp{Kind: election.OpRevoke, Token: 2}},                 // not the token
		{node: 1, op: election.LockOp{Kind: election.OpRevoke, Token: 1}},
		{node: 1, op: election.LockOp{Kind: election.OpRenew, Token: 1}},                  // revoked
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(2, 1, 2)}}, // lease not over
		{special: "wait"},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(2, 1, 2)}},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(2, 1, 1)}}, // token moved on
		{node: 2, op: election.LockOp{Kind: election.OpRenew, Token: 2}},
		{node: 1, op: election.LockOp{Kind: election.OpRelease, Token: 2}}, // not its token
		{node: 2, op: election.LockOp{Kind: election.OpRelease, Token: 2, Final: final}},
		{node: 2, op: election.LockOp{Kind: election.OpRenew, Token: 2}}, // released
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(3, 2, 1)}},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: voter(election.CmdAddVoter, 3)}},
		{node: 2, op: election.LockOp{Kind: election.OpApply, Command: voter(election.CmdRemoveVoter, 1)}}, // the primary
		{node: 1, op: election.LockOp{Kind: election.OpRead}},
		{special: "kill", node: 1},
		{node: 1, op: election.LockOp{Kind: election.OpTryLock}}, // confirm on a dead session
		{node: 2, op: election.LockOp{Kind: election.OpTryLock}},
		{node: 1, op: election.LockOp{Kind: election.OpTryLock}},
		{node: 1, op: election.LockOp{Kind: election.OpApply, Command: promote(4, 3, 2)}},
		{node: 2, op: election.LockOp{Kind: election.OpRevoke, Token: 3}},
		{node: 1, op: election.LockOp{Kind: election.OpRead}},
	}
	for i, st := range steps {
		switch st.special {
		case "wait":
			for {
				row, err := real[2].Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if row.Remaining < -50*time.Millisecond && db.lockRow(db.clock.at(now())).Remaining < -50*time.Millisecond {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			continue
		case "kill":
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
				fmt.Sprintf("ramd-coordinator-%d", st.node)).Scan(&n); err != nil || n != 1 {
				t.Fatalf("terminate: %d %v", n, err)
			}
			for sid, s := range db.sessions {
				if s.key.node == st.node && s.lockConn() {
					db.terminate(sid)
				}
			}
			continue
		}
		st.op.Seq = uint64(i + 1)
		var got election.LockResult
		for try := 0; ; try++ {
			// A terminated backend frees its lock a moment after its
			// client saw the connection end (as in election/pglock's
			// tests): retry a refused TryLock briefly on the real side.
			got = runReal(ctx, real[st.node], st.node, st.op)
			if st.op.Kind != election.OpTryLock || got.OK || got.Err != nil || try == 20 || !model[st.node].wouldHold(db) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		want := model[st.node].run(db, db.clock.at(now()), st.op)
		if d := diffResults(got, want); d != "" {
			t.Fatalf("step %d (node %d, %v): real SQL and model disagree: %s\nreal:  %s\nmodel: %s", i, st.node, st.op, d, fmtResult(got), fmtResult(want))
		}
		t.Logf("step %2d n%d %-28v %s", i, st.node, st.op, fmtResult(got))
	}
}

// modelClient is the simulated client (lockclient.go) reduced to one
// synchronous call: the same client-side checks, connections and locked
// flag, without the network.
type modelClient struct {
	node      uint64
	locked    bool
	gen       [2]uint64
	confirmed [2]bool
}

// wouldHold: the model gives this client the lock on a TryLock now.
func (c *modelClient) wouldHold(db *coordDB) bool {
	return db.holder == 0 || db.holderNode() == c.node
}

func (c *modelClient) run(db *coordDB, now time.Duration, op election.LockOp) election.LockResult {
	i := lockQueue(op)
	if (op.Kind == election.OpRevoke || (op.Kind == election.OpApply && i == 0)) && !c.locked {
		return election.LockResult{Kind: op.Kind, Seq: op.Seq, NotHolder: true, Err: errDBNotHolder}
	}
	if c.gen[i] == 0 {
		c.gen[i]++
		c.confirmed[i] = false
		if i == 0 {
			c.locked = false
		}
	}
	req := dbRequest{key: connKey{node: c.node, epoch: 1, conn: i, gen: c.gen[i]}, connect: !c.confirmed[i], op: op, confirm: op.Kind == election.OpTryLock && c.locked}
	rep, _ := db.receive(now, req)
	c.confirmed[i] = true
	r := lockOutcome(op, rep.out)
	switch {
	case errors.Is(rep.out.err, errDBConnLost):
		c.gen[i] = 0
		if i == 0 {
			c.locked = false
		}
	case op.Kind == election.OpTryLock:
		c.locked = rep.out.ok && rep.out.err == nil
	case r.NotHolder:
		c.locked = false
	}
	return r
}

// runReal is daemon/pglock.go's lockExec.run on a real client (its
// classification of errors, as the daemon hands outcomes to LockNode).
func runReal(ctx context.Context, c *pglock.Client, self uint64, op election.LockOp) election.LockResult {
	r := election.LockResult{Kind: op.Kind, Seq: op.Seq}
	var row pglock.Row
	var err error
	switch op.Kind {
	case election.OpTryLock:
		r.OK, err = c.TryLock(ctx)
	case election.OpRead:
		row, err = c.Read(ctx)
	case election.OpRenew:
		row, r.OK, err = c.Renew(ctx, self, op.Token)
	case election.OpRelease:
		row, err = c.Release(ctx, self, op.Token, op.Final)
	case election.OpRevoke:
		row, err = c.Revoke(ctx, op.Token)
	case election.OpApply:
		row, err = c.Apply(ctx, *op.Command)
	}
	if row.Exists || (err == nil && op.Kind == election.OpRead) {
		r.Row = &row
	}
	switch {
	case err == nil:
		if op.Kind != election.OpTryLock && op.Kind != election.OpRenew {
			r.OK = true
		}
	case errors.Is(err, pglock.ErrConflict):
		r.Conflict, r.Err = true, err
	case errors.Is(err, pglock.ErrNotHolder):
		r.NotHolder, r.Err = true, err
	case errors.Is(err, election.ErrRejected), errors.Is(err, election.ErrStaleToken):
		r.Err = err
	default:
		r.Unreachable, r.Err = true, err
	}
	return r
}

func diffResults(a, b election.LockResult) string {
	switch {
	case a.OK != b.OK, a.Conflict != b.Conflict, a.NotHolder != b.NotHolder, a.Unreachable != b.Unreachable, (a.Err == nil) != (b.Err == nil):
		return "outcome"
	case (a.Row == nil) != (b.Row == nil):
		return "row returned or not"
	case a.Row == nil:
		return ""
	}
	x, y := *a.Row, *b.Row
	switch {
	case x.Exists != y.Exists, x.State.Token != y.State.Token, x.State.Primary != y.State.Primary:
		return "token/primary"
	case x.Revoked != y.Revoked, x.Released != y.Released:
		return "revoked/released"
	case (x.Final == nil) != (y.Final == nil) || (x.Final != nil && *x.Final != *y.Final):
		return "final"
	case x.Coordinator != y.Coordinator:
		return "coordinator"
	case fmt.Sprint(x.State.Voters, x.State.Learners, x.State.Removed) != fmt.Sprint(y.State.Voters, y.State.Learners, y.State.Removed):
		return "members"
	case x.Exists && (x.Remaining < 0) != (y.Remaining < 0) && abs(x.Remaining) > 200*time.Millisecond:
		return "lease over or not"
	}
	return ""
}

func abs(d time.Duration) time.Duration { return max(d, -d) }

func fmtResult(r election.LockResult) string {
	s := fmt.Sprintf("ok=%v conflict=%v notholder=%v unreachable=%v err=%v", r.OK, r.Conflict, r.NotHolder, r.Unreachable, r.Err != nil)
	if r.Row != nil {
		s += fmt.Sprintf(" row{exists=%v token=%d primary=%d revoked=%d released=%v final=%v coord=%d remaining=%v voters=%v}",
			r.Row.Exists, r.Row.State.Token, r.Row.State.Primary, r.Row.Revoked, r.Row.Released, r.Row.Final != nil, r.Row.Coordinator, r.Row.Remaining.Round(time.Millisecond), r.Row.State.Voters)
	}
	return s
}
