package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/election/pglock"
)

// The pglock backend's I/O: election.LockNode asks for operations on the
// coordination database (Ready.Ops); lockExec runs them with
// election/pglock and hands every outcome back to the election loop
// (LockNode.OnResult). Two goroutines, one per connection: the lock
// session (lock, revoke, promote, reads while coordinating) and the
// worker (renewals, releases, other commands), so a slow decision never
// delays a lease renewal. LockNode keeps at most one operation of a kind
// in flight, so the queues stay short.
type lockExec struct {
	cfg     pglock.Config
	log     *slog.Logger
	results chan election.LockResult

	mu     sync.Mutex
	client *pglock.Client
	// openErr is logged once per distinct error.
	openErr string

	session, worker chan election.LockOp
	cancel          context.CancelFunc
}

// lockOpTimeout bounds one operation; the lease arithmetic does not
// depend on it (a renewal that comes back late extends the lease from
// its send time), it only keeps a dead connection from stalling the
// node for long.
func newLockExec(ctx context.Context, cfg pglock.Config, log *slog.Logger) *lockExec {
	e := &lockExec{cfg: cfg, log: log, results: make(chan election.LockResult, 64),
		session: make(chan election.LockOp, 16), worker: make(chan election.LockOp, 16)}
	go e.loop(ctx, e.session)
	go e.loop(ctx, e.worker)
	return e
}

// submit queues op on its connection's goroutine.
func (e *lockExec) submit(op election.LockOp) {
	q := e.worker
	switch op.Kind {
	case election.OpTryLock, election.OpRevoke, election.OpRead:
		q = e.session
	case election.OpApply:
		if op.Command != nil && op.Command.Type == election.CmdPromote {
			q = e.session
		}
	}
	select {
	case q <- op:
	default:
		// Cannot happen with at most one operation of a kind in flight;
		// report it rather than block the election loop.
		e.results <- election.LockResult{Kind: op.Kind, Seq: op.Seq, Unreachable: true, Err: errors.New("daemon: pglock queue full")}
	}
}

func (e *lockExec) loop(ctx context.Context, q chan election.LockOp) {
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-q:
			r := e.run(ctx, op)
			select {
			case e.results <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// clientFor opens the client (and the schema) on first use; while the
// database is unreachable every operation reports so.
func (e *lockExec) clientFor(ctx context.Context) (*pglock.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		return e.client, nil
	}
	c, err := pglock.Open(ctx, e.cfg)
	if err != nil {
		if err.Error() != e.openErr {
			e.openErr = err.Error()
			if errors.Is(err, pglock.ErrSchemaTooNew) {
				e.log.Error("the coordination database's schema is newer than this ramd: upgrade ramd", "error", err)
			} else {
				e.log.Warn("cannot open the coordination database", "error", err)
			}
		}
		return nil, err
	}
	e.openErr = ""
	e.client = c
	return c, nil
}

func (e *lockExec) close() {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		e.client.Close()
		e.client = nil
	}
}

func (e *lockExec) run(ctx context.Context, op election.LockOp) election.LockResult {
	r := election.LockResult{Kind: op.Kind, Seq: op.Seq}
	c, err := e.clientFor(ctx)
	if err != nil {
		r.Unreachable, r.Err = true, err
		return r
	}
	var row pglock.Row
	switch op.Kind {
	case election.OpTryLock:
		r.OK, err = c.TryLock(ctx)
	case election.OpRead:
		row, err = c.Read(ctx)
	case election.OpRenew:
		row, r.OK, err = c.Renew(ctx, uint64(e.cfg.NodeID), op.Token)
	case election.OpRelease:
		row, err = c.Release(ctx, uint64(e.cfg.NodeID), op.Token, op.Final)
	case election.OpRevoke:
		row, err = c.Revoke(ctx, op.Token)
	case election.OpApply:
		if op.Command == nil {
			err = errors.New("daemon: apply without a command")
			break
		}
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
	case errors.Is(err, election.ErrRejected), errors.Is(err, election.ErrStaleToken), isServerError(err):
		r.Err = err
	default:
		r.Unreachable, r.Err = true, err
	}
	return r
}

// isServerError: the database answered (an SQL error), as opposed to a
// connection that failed or timed out.
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code != "57P01" && pe.Code != "57P05" && pe.Code != "57014"
}

// lockConfig is the pglock client's configuration for this daemon. The
// session timeout is the TTL plus a renew interval: a frozen or vanished
// coordinator's lock is freed within it, and a live one reads the row
// every renew interval, well inside it.
func (d *Daemon) lockConfig() pglock.Config {
	f := d.cfg.Failover
	return pglock.Config{
		DSN: d.cfg.Cluster.CoordinationDSN, Cluster: d.cfg.Cluster.ClusterName, NodeID: uint64(d.cfg.Cluster.NodeID),
		TTL:            f.LeaseTTL.Duration,
		SessionTimeout: max(f.LeaseTTL.Duration+f.LeaseRenewInterval.Duration, 2*time.Second),
		OpTimeout:      max(2*f.LeaseRenewInterval.Duration, time.Second),
	}
}

// createLock starts the pglock election node and its executor. Nothing
// waits for other daemons: the coordination database holds the state.
func (f *failoverLoop) createLock() bool {
	cfg := election.LockConfig{ID: uint64(f.d.cfg.Cluster.NodeID), TickInterval: tickInterval, Start: f.now(), Lease: f.lease,
		MaximumLagOnFailover: uint64(f.d.cfg.Failover.MaximumLagOnFailover)}
	if m := f.d.cfg.Failover.SynchronousMode; m != "off" {
		cfg.Sync = &election.SyncState{Mode: election.SyncMode(m), NumSync: f.d.cfg.Failover.SynchronousNodeCount}
	}
	n, err := election.NewLockNode(cfg)
	if err != nil {
		f.log.Error("cannot start the election node", "error", err)
		return false
	}
	f.lock, f.node = n, n
	// The executor outlives the loop's context by the release at stop
	// (run's deferred closeLock ends it).
	ctx, cancel := context.WithCancel(context.Background())
	f.lockExec = newLockExec(ctx, f.d.lockConfig(), f.log.With("backend", "pglock"))
	f.lockExec.cancel = cancel
	f.results = f.lockExec.results
	f.ticked = int64(cfg.Start / tickInterval)
	f.log.Info("election node started", "backend", "pglock", "coordination_dsn", configs.RedactDSN(f.d.cfg.Cluster.CoordinationDSN))
	return true
}

// closeLock stops the executor and closes the coordination database's
// connections (which frees the coordinator lock at once).
func (f *failoverLoop) closeLock() {
	if f.lockExec != nil {
		f.lockExec.close()
	}
}

// save persists what the quorum backend must keep across restarts; the
// pglock backend keeps nothing locally (the database is its durable
// state).
func (f *failoverLoop) save(rd election.Ready) error {
	if f.lock != nil {
		return nil
	}
	return f.store.Save(rd)
}

// Unreachable says why the coordination database counts as unreachable
// ("" while it answers, and always with the quorum backend).
func (f *failoverLoop) Unreachable() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.unreachable
}

// lockUnreachable reports whether the coordination database does not
// answer (the election loop's own view; Unreachable is the published one).
func (f *failoverLoop) lockUnreachable() bool {
	_, _, down := f.lock.Unreachable()
	return down
}

// resumeAfterFence (pglock): a primary fenced because it could not renew
// (the coordination database was unreachable) that renews its lease again
// under the same token serves again. That is safe: a renewal succeeds only
// while the token is current and not revoked, so no coordinator has begun
// to replace it. (The quorum backend keeps a fenced primary down until
// the election names a new one.)
func (f *failoverLoop) resumeAfterFence(a election.Action) {
	if f.lock == nil {
		return
	}
	st := f.node.State()
	if w := f.Want(); w.role == wantFenced && st.Primary == uint64(f.d.cfg.Cluster.NodeID) && a.Token == st.Token {
		f.log.Info("lease renewed again under the same token; serving as primary again", "token", a.Token)
		f.setWant(desired{role: wantPrimary, token: a.Token, reason: "lease renewed after " + w.reason})
	}
}
