package e2e

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

// waitWritable waits until exactly one running node other than skip
// answers /primary with 200 (it holds the lease) and returns it.
func waitWritable(t *testing.T, c *cluster.Cluster, within time.Duration, skip *cluster.Node) *cluster.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	n, err := c.WaitWritable(ctx, skip)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func crashPostgres(t *testing.T, n *cluster.Node) {
	t.Helper()
	if err := n.CrashPostgres(); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverKillPrimary: kill -9 the primary's daemon and postmaster. A
// new primary accepts writes, the token goes up by one, and the old node,
// restarted, rejoins as a replica on the new timeline by itself.
func TestFailoverKillPrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, old := formedPrimary(t, ctx)
	before, err := old.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.FencingToken == 0 {
		t.Fatalf("no fencing token before failover: %+v", before)
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
	t.Logf("kill -9 of %s (daemon and PostgreSQL): %s became primary; first write acknowledged by it %.2f s after the kill", old.Name, newP.Name, firstAck.Sub(killedAt).Seconds())
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

	// The old node comes back and rejoins as a replica by itself.
	old.StopPostgres()
	restartAt := fileSize(old.LogPath)
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
	time.Sleep(100 * time.Millisecond)

	// Count acknowledged rows missing from the new primary (asynchronous
	// replication allows losing the last ones; report them).
	lost, acked, err := w.Lost(ctx, newP)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes acknowledged, %d lost (asynchronous mode)", acked, lost)
	checkFailoverStory(t, c, old, newP, after.FencingToken, restartAt)
}

// checkFailoverStory reads the nodes' logs of TestFailoverKillPrimary and
// requires the state changes of the failover to be there, in order, one
// info line each with node, token and reason.
func checkFailoverStory(t *testing.T, c *cluster.Cluster, old, newP *cluster.Node, token uint64, restartAt int64) {
	t.Helper()
	tok := fmt.Sprint(token)
	// Some survivor, as coordinator, ran the failover.
	coordinated := false
	for _, n := range c.Nodes {
		if n == old {
			continue
		}
		lines := readLog(t, n.LogPath, 0)
		checkStateKeys(t, n.Name, lines, "primary changed", "desired role changed", "postgresql role changed",
			"became the coordinator", "no longer the coordinator", "failover", "failover-done", "lease-acquired", "lease-lost")
		for _, l := range lines {
			if (step{"election", "failover-done", map[string]string{"reason": fmt.Sprintf("~primary %d", newP.ID)}}).match(l) {
				coordinated = true
			}
		}
		// Every survivor applied the new primary under the new token.
		checkStory(t, n.Name, lines, n.Name, []step{
			{"election", "primary changed", map[string]string{"token": tok, "primary": fmt.Sprint(newP.ID), "previous_primary": fmt.Sprint(old.ID)}},
		})
	}
	if !coordinated {
		t.Errorf("no survivor logged failover-done naming primary %d", newP.ID)
	}
	checkStory(t, newP.Name, readLog(t, newP.LogPath, 0), newP.Name, []step{
		{"election", "desired role changed", map[string]string{"role": "primary", "token": tok}},
		{"daemon", "promoting PostgreSQL", map[string]string{"token": tok}},
		{"pg", "postgresql promoted", nil},
		{"daemon", "postgresql role changed", map[string]string{"from": "replica", "to": "primary", "token": tok}},
	})
	// The old primary, restarted, learns the new token, is told to
	// follow, rewinds and becomes a replica.
	oldLines := readLog(t, old.LogPath, restartAt)
	checkStateKeys(t, old.Name, oldLines, "primary changed", "desired role changed", "postgresql role changed",
		"rejoining as a replica with pg_rewind", "re-pointing replica")
	checkStory(t, old.Name+" after its restart", oldLines, old.Name, []step{
		{"daemon", "ramd started", nil},
		{"election", "desired role changed", map[string]string{"role": "replica", "token": tok, "primary": fmt.Sprint(newP.ID)}},
		{"daemon", "rejoining as a replica with pg_rewind", nil},
		{"pg", "pg_rewind started", nil},
		{"pg", "pg_rewind finished", nil},
		{"daemon", "postgresql role changed", map[string]string{"to": "replica", "token": tok}},
	})
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestPostgresCrashRestartsInPlace: kill -9 only the primary's
// PostgreSQL (postmaster and backends). Its daemon restarts it in place:
// no failover, the same primary, no new timeline, no lost row.
func TestPostgresCrashRestartsInPlace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, p := formedPrimary(t, ctx)
	before, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, ctx, p)
	if _, err := conn.Exec(ctx, "CREATE TABLE e2e_crash (v int); INSERT INTO e2e_crash VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	crashPostgres(t, p)
	crashedAt := time.Now()
	// Wait until PostgreSQL answers again, then ask who is writable (the
	// checks answer from the last health check, up to one interval old).
	eventually(t, 30*time.Second, func() string {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		defer ccancel()
		c, err := pgx.Connect(cctx, p.DSN())
		if err != nil {
			return err.Error()
		}
		c.Close(ctx)
		return ""
	})
	time.Sleep(time.Second)
	back := waitWritable(t, c, 30*time.Second, nil)
	if back != p {
		t.Fatalf("%s became primary after a PostgreSQL crash on %s; want a restart in place", back.Name, p.Name)
	}
	t.Logf("PostgreSQL on %s back and writable %.2f s after the crash", p.Name, time.Since(crashedAt).Seconds())
	after, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ns, _ := after.Node(p.ID)
	nb, _ := before.Node(p.ID)
	if after.FencingToken != before.FencingToken || ns.Timeline != nb.Timeline {
		t.Fatalf("token %d→%d, timeline %d→%d: want both unchanged", before.FencingToken, after.FencingToken, nb.Timeline, ns.Timeline)
	}
	var n int
	if err := connect(t, ctx, p).QueryRow(ctx, "SELECT count(*) FROM e2e_crash").Scan(&n); err != nil || n != 1 {
		t.Fatalf("row after crash: %d, %v", n, err)
	}
}

// TestReplicaLossNoFailover: losing one replica of three changes nothing
// for the primary: no failover, writes continue.
func TestReplicaLossNoFailover(t *testing.T) { replicaLoss(t, "off") }

// TestReplicaLossQuorum: the same in synchronous_mode = "quorum": the
// other replica acknowledges, so writes continue, and the synchronous set
// the cluster records shrinks to the surviving replica.
func TestReplicaLossQuorum(t *testing.T) { replicaLoss(t, "quorum") }

func replicaLoss(t *testing.T, syncMode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, p := formedPrimaryWith(t, ctx, fmt.Sprintf("\n[failover]\nsynchronous_mode = %q\n", syncMode))
	before, _ := p.Status(ctx)
	var replica, survivor *cluster.Node
	for _, n := range c.Nodes {
		if n != p {
			replica, survivor = n, replica
		}
	}
	if err := replica.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, replica)
	conn := connect(t, ctx, p)
	if _, err := conn.Exec(ctx, "CREATE TABLE e2e_loss (v int)"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := conn.Exec(ictx, "INSERT INTO e2e_loss VALUES ($1)", i)
		icancel()
		if err != nil {
			t.Fatalf("write %d on %s after losing %s: %v", i, p.Name, replica.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := httpStatus("GET", p.APIURL()+"/primary"); code != 200 {
		t.Fatalf("/primary on %s = %d after losing one replica", p.Name, code)
	}
	after, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.FencingToken != before.FencingToken || after.PrimaryNodeID != p.ID {
		t.Fatalf("failover happened: token %d→%d, primary %d", before.FencingToken, after.FencingToken, after.PrimaryNodeID)
	}
	if syncMode == "off" {
		return
	}
	// The recorded synchronous set shrank to the survivor, so a failover
	// now would not wait for the lost replica's position.
	if after.SyncMode != syncMode || len(after.SyncStandbys) != 1 || after.SyncStandbys[0] != survivor.ID {
		t.Fatalf("synchronous setting after losing %s: mode %q standbys %v, want %s and [%d]", replica.Name, after.SyncMode, after.SyncStandbys, syncMode, survivor.ID)
	}
	t.Logf("%s lost: writes continued, acknowledged by %s alone; the recorded synchronous set is %v", replica.Name, survivor.Name, after.SyncStandbys)
}

// formedPrimary forms a 3-node cluster and returns it with its writable
// primary (the node holding the lease).
func formedPrimary(t *testing.T, ctx context.Context) (*cluster.Cluster, *cluster.Node) {
	t.Helper()
	return formedPrimaryWith(t, ctx, "")
}

// formedPrimaryWith is formedPrimary with extra configuration.
func formedPrimaryWith(t *testing.T, ctx context.Context, extra string) (*cluster.Cluster, *cluster.Node) {
	t.Helper()
	c := launch(t, 3, extra)
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	return c, waitWritable(t, c, 30*time.Second, nil)
}

// primaryWithDirectWriter forms a 3-node cluster and starts a writer
// connected straight to its primary, which has acknowledged writes when
// this returns. The writer stops when ctx ends.
func primaryWithDirectWriter(t *testing.T, ctx context.Context, table string) (*cluster.Cluster, *cluster.Node, *cluster.Writer) {
	t.Helper()
	c, old := formedPrimary(t, ctx)
	if _, err := connect(t, ctx, old).Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", table)); err != nil {
		t.Fatal(err)
	}
	w := directWriter(c, old, table)
	go w.Run(ctx)
	time.Sleep(time.Second)
	if n := w.AcksAfter(time.Now().Add(-time.Second), old.PGPort); n == 0 {
		t.Fatal("the writer got no acknowledgement from the primary")
	}
	return c, old, w
}

// directWriter writes straight to one node, as a client that connected to
// the old primary before it was cut off would.
func directWriter(c *cluster.Cluster, n *cluster.Node, table string) *cluster.Writer {
	w := c.NewWriter(table, 20*time.Millisecond)
	w.DSN = n.DSN()
	return w
}

// TestKillPrimaryDaemonOnly: kill -9 only the primary's daemon; its
// PostgreSQL keeps running with clients connected. The lease gate stops
// it from acknowledging commits, so there is never a second writable
// primary, and the others fail over.
func TestKillPrimaryDaemonOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, old, w := primaryWithDirectWriter(t, ctx, "e2e_direct")
	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	newP := waitWritable(t, c, 30*time.Second, old)
	if _, err := connect(t, ctx, newP).Exec(ctx, "INSERT INTO e2e_direct VALUES (-1)"); err != nil {
		t.Fatalf("new primary %s does not take writes: %v", newP.Name, err)
	}
	t.Logf("daemon of %s killed; %s writable %.2f s later", old.Name, newP.Name, time.Since(killedAt).Seconds())
	time.Sleep(2 * time.Second)
	// The old PostgreSQL still runs, but its gate died with the daemon:
	// not one commit may be acknowledged once the lease could have ended.
	if n := w.AcksAfter(killedAt.Add(2*time.Second), old.PGPort); n > 0 {
		t.Fatalf("old primary %s acknowledged %d writes after its lease expired", old.Name, n)
	}
	t.Logf("old primary acknowledged %d writes after the kill (all within the lease)", w.AcksAfter(killedAt, old.PGPort))
}

// TestFrozenPrimaryDaemon: SIGSTOP the primary's daemon for longer than
// the lease while its PostgreSQL keeps running, then SIGCONT. No write is
// acknowledged by the old primary after its lease expired, a new primary
// takes writes, and on waking the old daemon fences before anything else
// and rejoins as a replica.
func TestFrozenPrimaryDaemon(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, old, w := primaryWithDirectWriter(t, ctx, "e2e_frozen")
	if err := old.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	newP := waitWritable(t, c, 30*time.Second, old)
	if _, err := connect(t, ctx, newP).Exec(ctx, "INSERT INTO e2e_frozen VALUES (-1)"); err != nil {
		t.Fatalf("new primary %s does not take writes: %v", newP.Name, err)
	}
	t.Logf("daemon of %s frozen; %s writable %.2f s later", old.Name, newP.Name, time.Since(stoppedAt).Seconds())
	for time.Since(stoppedAt) < 5*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if err := old.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() string {
		s, err := newP.Status(ctx)
		if err != nil {
			return err.Error()
		}
		ns, _ := s.Node(old.ID)
		if ns.Role != "replica" || !ns.Streaming {
			return fmt.Sprintf("%s: role=%s streaming=%v", old.Name, ns.Role, ns.Streaming)
		}
		return ""
	})
	if n := w.AcksAfter(stoppedAt.Add(2*time.Second), old.PGPort); n > 0 {
		t.Fatalf("old primary %s acknowledged %d writes after its lease expired", old.Name, n)
	}
	t.Logf("old primary acknowledged %d writes after the freeze (all within the lease), rejoined as a replica", w.AcksAfter(stoppedAt, old.PGPort))
}
