package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/apiclient"
	"github.com/ramd/ramd/internal/cluster"
	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// electionEnv selects the election backend of every cluster the suite
// launches: RAMD_E2E_ELECTION=pglock runs the whole suite (failover,
// partition, switchover...) with the pglock backend against a
// coordination server each test starts; unset or "quorum", the default.
const electionEnv = "RAMD_E2E_ELECTION"

// withBackend applies RAMD_E2E_ELECTION to a prepared cluster unless
// the test chose a backend itself: with pglock, a coordination server on
// the host's address as the nodes reach it (the bridge's in a Netns
// cluster, so partition tests cut the isolated node off it too).
func withBackend(t *testing.T, c *cluster.Cluster, opts cluster.Options) {
	t.Helper()
	switch b := os.Getenv(electionEnv); b {
	case "", "quorum":
	case "pglock":
		if opts.Election == "" {
			if err := c.SetCoordination(pgtest.CoordinationServerOn(t, c.HostAddr()).DSN); err != nil {
				t.Fatal(err)
			}
		}
	default:
		t.Fatalf("%s=%q: want quorum or pglock", electionEnv, b)
	}
}

// coordination starts the test's coordination server (stopped at the
// end of the test).
func coordination(t *testing.T) *pgtest.Coordination {
	t.Helper()
	return pgtest.CoordinationServer(t)
}

// launchPglock starts an n-node pglock cluster against coord and waits
// until it has a writable primary.
func launchPglock(t *testing.T, ctx context.Context, n int, coord *pgtest.Coordination) (*cluster.Cluster, *cluster.Node) {
	t.Helper()
	c := prepare(t, cluster.Options{Nodes: n, Election: "pglock", CoordinationDSN: coord.DSN})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	return c, waitWritable(t, c, 30*time.Second, nil)
}

// coordRow reads the cluster's row in the coordination database.
func coordRow(t *testing.T, ctx context.Context, coord *pgtest.Coordination) (token, primary int64) {
	t.Helper()
	conn, err := pgx.Connect(ctx, coord.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT token, primary_id FROM ramd.cluster WHERE cluster = 'demo'`).Scan(&token, &primary); err != nil {
		t.Fatal(err)
	}
	return token, primary
}

// TestPglockTwoNodeFailover: a two-node pglock cluster (a quorum backend
// cannot fail over with two nodes) loses its primary to kill -9 of daemon
// and PostgreSQL. The replica is promoted under token + 1 (in the
// coordination database too), the killed primary acknowledged nothing
// after the kill, and the old node rejoins as a replica when restarted.
func TestPglockTwoNodeFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	coord := coordination(t)
	c, old := launchPglock(t, ctx, 2, coord)
	before, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok, p := coordRow(t, ctx, coord); uint64(tok) != before.FencingToken || int(p) != old.ID {
		t.Fatalf("coordination row: token %d primary %d; status: token %d primary %d", tok, p, before.FencingToken, old.ID)
	}
	if _, err := connect(t, ctx, old).Exec(ctx, "CREATE TABLE e2e_writes (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := c.NewWriter("e2e_writes", 20*time.Millisecond)
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	time.Sleep(2 * time.Second)

	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	killedAt := time.Now()
	newP := waitWritable(t, c, 30*time.Second, old)
	var firstAck time.Time
	eventually(t, 30*time.Second, func() string {
		at, ok := w.FirstAckAfter(killedAt, newP.PGPort)
		if !ok {
			return "no write acknowledged by the new primary yet"
		}
		firstAck = at
		return ""
	})
	t.Logf("pglock, 2 nodes: kill -9 of %s: %s became primary; first write acknowledged by it %.2f s after the kill", old.Name, newP.Name, firstAck.Sub(killedAt).Seconds())
	if n := w.AcksAfter(killedAt.Add(100*time.Millisecond), old.PGPort); n > 0 {
		t.Fatalf("the killed primary acknowledged %d writes after the kill", n)
	}
	after, err := newP.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FencingToken != before.FencingToken+1 {
		t.Fatalf("token went from %d to %d, want +1", before.FencingToken, after.FencingToken)
	}
	if tok, p := coordRow(t, ctx, coord); uint64(tok) != after.FencingToken || int(p) != newP.ID {
		t.Fatalf("coordination row after failover: token %d primary %d, want %d and %d", tok, p, after.FencingToken, newP.ID)
	}

	old.StopPostgres()
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, func() string {
		s, err := newP.Status(ctx)
		if err != nil {
			return err.Error()
		}
		ns, _ := s.Node(old.ID)
		if ns.Role != "replica" || !ns.Streaming || ns.Timeline < 2 {
			return fmt.Sprintf("%s: role=%s streaming=%v timeline=%d", old.Name, ns.Role, ns.Streaming, ns.Timeline)
		}
		return ""
	})
	wstop()
	lost, acked, err := w.Lost(ctx, newP)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged, %d lost (asynchronous mode)", acked, lost)
}

// TestPglockCoordinatorKilled: the coordination server terminates the
// coordinator's lock session (pg_terminate_backend). A daemon takes the
// role over (the same one, reconnecting, or the other), and nothing
// fails over: the token stays, the primary keeps acknowledging writes.
func TestPglockCoordinatorKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	coord := coordination(t)
	c, p := launchPglock(t, ctx, 2, coord)
	before, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE e2e_coord (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := directWriter(c, p, "e2e_coord")
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)

	admin, err := pgx.Connect(ctx, coord.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var holder string
	eventually(t, 30*time.Second, func() string {
		err := admin.QueryRow(ctx, `SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
			WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'ramd-coordinator-%'`).Scan(&holder)
		if err != nil {
			return "no coordinator session: " + err.Error()
		}
		return ""
	})
	var killed bool
	if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
		WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`, holder).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminating %s's session: %v %v", holder, killed, err)
	}
	killedAt := time.Now()
	t.Logf("terminated the lock session of %s", holder)
	eventually(t, 30*time.Second, func() string {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'ramd-coordinator-%'`).Scan(&n); err != nil {
			return err.Error()
		}
		if n != 1 {
			return fmt.Sprintf("%d coordinator sessions", n)
		}
		return ""
	})
	t.Logf("a coordinator holds the lock again %.2f s later", time.Since(killedAt).Seconds())
	time.Sleep(3 * time.Second) // more than the lease: a wrong failover would show
	after, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FencingToken != before.FencingToken || after.PrimaryNodeID != p.ID {
		t.Fatalf("after the coordinator's session was killed: token %d primary %d, want %d and %d", after.FencingToken, after.PrimaryNodeID, before.FencingToken, p.ID)
	}
	if tok, _ := coordRow(t, ctx, coord); uint64(tok) != before.FencingToken {
		t.Fatalf("coordination row token %d, want %d", tok, before.FencingToken)
	}
	if n := w.AcksAfter(time.Now().Add(-time.Second), p.PGPort); n == 0 {
		t.Fatal("the primary acknowledged no write in the last second")
	}
}

// TestPglockCoordinationRestart: the coordination server restarts during
// normal operation. While it is down /cluster/health says no failover is
// possible; afterwards the same primary serves under the same token (no
// failover). The primary stops acknowledging writes only if the outage
// outlasts its lease (the safe policy), and serves again once it renews.
func TestPglockCoordinationRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	coord := coordination(t)
	c, p := launchPglock(t, ctx, 2, coord)
	before, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE e2e_restart (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := directWriter(c, p, "e2e_restart")
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	time.Sleep(time.Second)

	if err := coord.Manager.Stop(ctx, pg.StopFast); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	var sawDown string
	eventually(t, 10*time.Second, func() string {
		var h apiclient.Health
		r, err := p.Client().Get(ctx, "/api/v1/cluster/health")
		if err == nil {
			err = r.Decode(&h)
		}
		if err != nil {
			return err.Error()
		}
		for _, r := range h.Reasons {
			if strings.Contains(r, "coordination database unreachable") {
				sawDown = h.Status + ": " + r
				return ""
			}
		}
		return fmt.Sprintf("health %s %v", h.Status, h.Reasons)
	})
	t.Logf("while down: %s", sawDown)
	if err := coord.Manager.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("coordination server down for %.2f s", time.Since(stoppedAt).Seconds())
	startedAt := time.Now()
	waitWritable(t, c, 30*time.Second, nil)
	eventually(t, 30*time.Second, func() string {
		if _, ok := w.FirstAckAfter(startedAt, p.PGPort); !ok {
			return "no write acknowledged since the restart"
		}
		return ""
	})
	time.Sleep(3 * time.Second) // more than the lease: a late failover would show
	after, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FencingToken != before.FencingToken || after.PrimaryNodeID != p.ID {
		t.Fatalf("after the restart: token %d primary %d, want %d and %d (no failover)", after.FencingToken, after.PrimaryNodeID, before.FencingToken, p.ID)
	}
	if after.CoordinationUnreachable != "" {
		t.Fatalf("still reported unreachable: %s", after.CoordinationUnreachable)
	}
	t.Logf("writes acknowledged by the primary during the outage: %d", w.AcksAfter(stoppedAt, p.PGPort)-w.AcksAfter(startedAt, p.PGPort))
}
