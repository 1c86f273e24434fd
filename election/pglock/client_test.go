package pglock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/election/pglock"
	"github.com/ramd/ramd/pg/pgtest"
)

const ttl = time.Second

func open(t *testing.T, dsn, cluster string, id uint64, session time.Duration) *pglock.Client {
	t.Helper()
	c, err := pglock.Open(context.Background(), pglock.Config{DSN: dsn, Cluster: cluster, NodeID: id, TTL: ttl, SessionTimeout: session})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func promote(tok, old, nw uint64) election.Command {
	return election.Command{Type: election.CmdPromote, Promote: &election.PromoteCmd{Token: tok, Old: old, New: nw, Reason: "test"}}
}

// waitExpired waits until the row's lease is over on the server's clock.
func waitExpired(t *testing.T, c *pglock.Client) pglock.Row {
	t.Helper()
	for range 100 {
		row, err := c.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if row.Remaining < 0 {
			return row
		}
		time.Sleep(row.Remaining + 20*time.Millisecond)
	}
	t.Fatal("the lease never expired")
	return pglock.Row{}
}

// TestSQL runs the pglock backend's SQL against a real PostgreSQL: schema
// creation and version check, bootstrap, the lock, renewals on the
// server's clock, revoke, the promote compare-and-set, release, commands,
// and lock loss when the server terminates the lock session or the
// session idles out.
func TestSQL(t *testing.T) {
	coord := pgtest.CoordinationServer(t)
	ctx := context.Background()
	a := open(t, coord.DSN, "c1", 1, 0)
	b := open(t, coord.DSN, "c1", 2, 0)
	admin, err := pgx.Connect(ctx, coord.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	t.Run("schema version", func(t *testing.T) {
		if _, err := admin.Exec(ctx, `UPDATE ramd.meta SET version = 99`); err != nil {
			t.Fatal(err)
		}
		_, err := pglock.Open(ctx, pglock.Config{DSN: coord.DSN, Cluster: "c1", TTL: ttl})
		if !errors.Is(err, pglock.ErrSchemaTooNew) {
			t.Fatalf("open with schema version 99: %v, want ErrSchemaTooNew", err)
		}
		t.Logf("refused: %v", err)
		if _, err := admin.Exec(ctx, `UPDATE ramd.meta SET version = $1`, pglock.SchemaVersion); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM ramd.meta`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("ramd.meta rows: %d %v (opening twice must not add rows)", n, err)
		}
	})

	t.Run("bad dsn is not echoed", func(t *testing.T) {
		_, err := pglock.Open(ctx, pglock.Config{DSN: "postgres://u:s3cret@[bad", Cluster: "c1", TTL: ttl})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error %v: want an error without the password", err)
		}
	})

	row, err := a.Read(ctx)
	if err != nil || row.Exists {
		t.Fatalf("read before bootstrap: %+v %v", row, err)
	}
	boot := election.Command{Type: election.CmdBootstrap, Bootstrap: &election.BootstrapCmd{Primary: 1, Voters: []uint64{1, 2}}}
	if row, err = a.Apply(ctx, boot); err != nil || row.State.Token != 1 || row.State.Primary != 1 {
		t.Fatalf("bootstrap: %+v %v", row, err)
	}
	if _, err := b.Apply(ctx, boot); !errors.Is(err, election.ErrRejected) {
		t.Fatalf("second bootstrap: %v, want ErrRejected", err)
	}

	if ok, err := a.TryLock(ctx); !ok || err != nil {
		t.Fatalf("a lock: %v %v", ok, err)
	}
	if ok, err := b.TryLock(ctx); ok || err != nil {
		t.Fatalf("b lock while a holds it: %v %v", ok, err)
	}
	if ok, err := a.TryLock(ctx); !ok || err != nil {
		t.Fatalf("a confirms its lock: %v %v", ok, err)
	}
	if row, err := b.Read(ctx); err != nil || row.Coordinator != 1 {
		t.Fatalf("b reads the coordinator: %d %v, want 1", row.Coordinator, err)
	}

	t.Run("renew", func(t *testing.T) {
		row, ok, err := b.Renew(ctx, 1, 1)
		if !ok || err != nil || row.Remaining <= 0 || row.Remaining > ttl {
			t.Fatalf("renew by the primary: %v %v remaining %v", ok, err, row.Remaining)
		}
		if _, ok, err := b.Renew(ctx, 2, 1); ok || err != nil {
			t.Fatalf("renew by a non-primary: %v %v", ok, err)
		}
		if _, ok, err := b.Renew(ctx, 1, 2); ok || err != nil {
			t.Fatalf("renew of a future token: %v %v", ok, err)
		}
	})

	t.Run("promote needs the lock, a revoke and an expired lease", func(t *testing.T) {
		if _, err := b.Apply(ctx, promote(2, 1, 2)); !errors.Is(err, pglock.ErrNotHolder) {
			t.Fatalf("promote by a non-holder: %v", err)
		}
		if _, err := b.Revoke(ctx, 1); !errors.Is(err, pglock.ErrNotHolder) {
			t.Fatalf("revoke by a non-holder: %v", err)
		}
		if _, err := a.Apply(ctx, promote(2, 1, 2)); !errors.Is(err, pglock.ErrConflict) {
			t.Fatalf("promote without revoke: %v", err)
		}
		row, err := a.Revoke(ctx, 1)
		if err != nil || row.Revoked != 1 || row.Remaining <= 0 {
			t.Fatalf("revoke: %+v %v", row, err)
		}
		if _, ok, err := b.Renew(ctx, 1, 1); ok || err != nil {
			t.Fatalf("renew after revoke: %v %v", ok, err)
		}
		if _, err := a.Apply(ctx, promote(2, 1, 2)); !errors.Is(err, pglock.ErrConflict) {
			t.Fatalf("promote while the lease still runs: %v", err)
		}
		waitExpired(t, a)
		row, err = a.Apply(ctx, promote(2, 1, 2))
		if err != nil || row.State.Token != 2 || row.State.Primary != 2 || row.Revoked != 0 || row.Remaining <= 0 {
			t.Fatalf("promote: %+v %v", row, err)
		}
		if _, err := a.Apply(ctx, promote(2, 1, 2)); !errors.Is(err, election.ErrStaleToken) {
			t.Fatalf("the same promotion again: %v, want ErrStaleToken", err)
		}
	})

	t.Run("commands from any client", func(t *testing.T) {
		row, err := b.Apply(ctx, election.Command{Type: election.CmdSetMaintenance, Maintenance: &election.MaintenanceCmd{On: true}})
		if err != nil || !row.State.Maintenance || row.State.Token != 2 {
			t.Fatalf("maintenance: %+v %v", row, err)
		}
		row, err = b.Apply(ctx, election.Command{Type: election.CmdAddVoter, Voter: &election.VoterCmd{ID: 3}})
		if err != nil || len(row.State.Voters) != 3 {
			t.Fatalf("add member: %+v %v", row, err)
		}
	})

	t.Run("terminated lock session: the lock moves, the old holder cannot act", func(t *testing.T) {
		terminateHolder(t, ctx, admin)
		// a still believes it holds the lock until it talks to the
		// server: its next decision fails.
		if _, err := a.Revoke(ctx, 2); err == nil {
			t.Fatal("revoke on a terminated session succeeded")
		}
		if a.Locked() {
			t.Fatal("a still believes it holds the lock")
		}
		// The terminated backend frees its locks as it exits, a moment
		// after its client saw the connection end.
		for i := 0; ; i++ {
			ok, err := b.TryLock(ctx)
			if err != nil || (!ok && i == 50) {
				t.Fatalf("b takes the lock: %v %v", ok, err)
			}
			if ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if row, err := a.Read(ctx); err != nil || row.Coordinator != 2 {
			t.Fatalf("a reads the coordinator: %d %v, want 2", row.Coordinator, err)
		}
		if ok, err := a.TryLock(ctx); ok || err != nil {
			t.Fatalf("a after b took the lock: %v %v", ok, err)
		}
		if _, err := a.Apply(ctx, promote(3, 2, 1)); !errors.Is(err, pglock.ErrNotHolder) {
			t.Fatalf("promote by the old holder: %v", err)
		}
	})

	t.Run("release lets the coordinator promote at once", func(t *testing.T) {
		row, err := a.Release(ctx, 2, 2, &election.Position{Timeline: 1, LSN: 42})
		if err != nil || !row.Released || row.Remaining > 0 || row.Final == nil || row.Final.LSN != 42 {
			t.Fatalf("release: %+v %v", row, err)
		}
		if _, ok, err := a.Renew(ctx, 2, 2); ok || err != nil {
			t.Fatalf("renew after release: %v %v", ok, err)
		}
		if _, err := a.Release(ctx, 1, 2, nil); !errors.Is(err, pglock.ErrConflict) {
			t.Fatalf("release by a non-primary: %v", err)
		}
		row, err = b.Apply(ctx, promote(3, 2, 1))
		if err != nil || row.State.Token != 3 || row.Released || row.Final != nil {
			t.Fatalf("promote after release: %+v %v", row, err)
		}
		var h int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM ramd.history WHERE cluster = 'c1'`).Scan(&h); err != nil || h != 3 {
			t.Fatalf("history rows: %d %v, want 3", h, err)
		}
	})

	t.Run("racing coordinators: one promotion per token", func(t *testing.T) {
		// b holds the lock; the server ends b's session and a takes the
		// lock, while b still believes it coordinates. Both promote to
		// token 4 at once: exactly one succeeds (a's), b's is refused.
		if _, err := b.Release(ctx, 1, 3, nil); err != nil {
			t.Fatal(err)
		}
		terminateHolder(t, ctx, admin)
		for i := 0; ; i++ {
			ok, err := a.TryLock(ctx)
			if err != nil || (!ok && i == 50) {
				t.Fatalf("a takes the lock: %v %v", ok, err)
			}
			if ok {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !b.Locked() {
			t.Fatal("b already knows it lost the lock; the race is not set up")
		}
		errs := make(chan error, 2)
		go func() { _, err := a.Apply(ctx, promote(4, 1, 2)); errs <- err }()
		go func() { _, err := b.Apply(ctx, promote(4, 1, 2)); errs <- err }()
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("exactly one promotion must succeed: %v, %v", e1, e2)
		}
		t.Logf("race: %v / %v", e1, e2)
		if row, err := a.Read(ctx); err != nil || row.State.Token != 4 {
			t.Fatalf("after the race: %+v %v", row, err)
		}
		if _, err := a.Apply(ctx, promote(4, 1, 2)); !errors.Is(err, election.ErrStaleToken) {
			t.Fatalf("repeat: %v", err)
		}
	})

	t.Run("idle lock session times out", func(t *testing.T) {
		c := open(t, coord.DSN, "c2", 3, time.Second)
		d := open(t, coord.DSN, "c2", 4, time.Second)
		if ok, err := c.TryLock(ctx); !ok || err != nil {
			t.Fatalf("c lock: %v %v", ok, err)
		}
		// c goes silent (a frozen daemon): idle_session_timeout ends its
		// session and frees the lock.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, err := d.TryLock(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the idle lock session was never ended")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if ok, _ := c.TryLock(ctx); ok {
			t.Fatal("c still holds the lock after idling out")
		}
	})
}

// terminateHolder ends the session holding c1's coordinator lock.
func terminateHolder(t *testing.T, ctx context.Context, admin *pgx.Conn) {
	t.Helper()
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		AND l.objid = ($1::bigint & 4294967295)::oid`, pglock.LockKey("c1")).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the lock holder: %d %v", n, err)
	}
}
