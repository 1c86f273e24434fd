package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestFailoverLagBound: asynchronous mode, maximum_lag_on_failover at its
// default (1 MiB). Both replicas' WAL receivers are frozen (SIGSTOP) while
// the primary writes about 8 MiB of WAL, then the primary is killed. No
// replica is within 1 MiB of where the primary was last seen, so none is
// promoted automatically (Patroni's rule: the failover would lose more
// than the operator allowed); the coordinator's phase says why, and
// nothing is promoted while it waits.
func TestFailoverLagBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	laggingFailover(t, ctx)
	// The waiting reason tells the operator the way out (a manual
	// failover, which election/testdata/lag.txt runs); the replicas'
	// receivers stay frozen until the end, so none can catch up.
}

// TestFailoverLagReclaim: as TestFailoverLagBound, but the old primary
// comes back (its daemon restarts; PostgreSQL stays down, fenced) while
// the failover waits. The coordinator promotes it again under the next
// token: it serves with every row it acknowledged, and the replicas
// follow it again — what Patroni gets when a failed leader takes its key
// back.
func TestFailoverLagReclaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, old, replicas, thaw := laggingFailover(t, ctx)
	before, err := replicas[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restartReclaimed(t, ctx, c, old, before.FencingToken, "lagging", 8000, thaw)
}

// laggingFailover forms a 3-node async cluster, freezes both replicas'
// WAL receivers while the primary writes about 8 MiB of WAL (table
// lagging, 8000 rows), kills the primary (daemon and PostgreSQL) and
// returns once a coordinator reports that the replicas lag too far behind
// the failed primary; it checks that nobody was promoted meanwhile. The
// receivers stay frozen; it returns the function that thaws them (also
// run at cleanup).
func laggingFailover(t *testing.T, ctx context.Context) (*cluster.Cluster, *cluster.Node, []*cluster.Node, func()) {
	t.Helper()
	c, old := formedPrimary(t, ctx)
	var replicas []*cluster.Node
	for _, n := range c.Nodes {
		if n != old {
			replicas = append(replicas, n)
		}
	}
	// Freeze each replica's WAL receiver: the primary goes on writing, the
	// replicas receive nothing, and the gossip carries both positions.
	var frozen []int
	thaw := func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		frozen = nil
	}
	// Before the cluster's teardown (cleanups run last first): a frozen
	// receiver would hold up PostgreSQL's shutdown.
	t.Cleanup(thaw)
	for _, r := range replicas {
		var pid int
		if err := connect(t, ctx, r).QueryRow(ctx, "SELECT pid FROM pg_stat_wal_receiver").Scan(&pid); err != nil {
			t.Fatalf("%s: WAL receiver: %v", r.Name, err)
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen = append(frozen, pid)
	}
	if _, err := connect(t, ctx, old).Exec(ctx, "CREATE TABLE lagging AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 8000) g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() string {
		s, err := replicas[0].Status(ctx)
		if err != nil {
			return err.Error()
		}
		for _, n := range s.Nodes {
			if n.NodeID != old.ID && n.LagBytes < 2<<20 {
				return fmt.Sprintf("%s's view: %s lags %d bytes, want the primary's gossiped position > 2 MiB ahead", replicas[0].Name, n.Name, n.LagBytes)
			}
		}
		return ""
	})
	before, err := replicas[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	// The receivers stay frozen: thawed now, they would read what the
	// primary had already sent into loopback socket buffers (up to tens of
	// MiB here; a CI run saw a replica catch up fully) and no longer lag.

	// Detection and the lease take about 3 s; the coordinator then waits.
	waitFailoverPhase(t, ctx, replicas, 20*time.Second, "behind the failed primary's last seen position")
	time.Sleep(3 * time.Second) // and it stays so
	for _, r := range replicas {
		if code := httpStatus("GET", r.APIURL()+"/primary"); code == 200 {
			t.Fatalf("%s was promoted although it lags more than maximum_lag_on_failover", r.Name)
		}
		s, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.FencingToken != before.FencingToken {
			t.Fatalf("token went %d → %d without a manual failover", before.FencingToken, s.FencingToken)
		}
	}
	return c, old, replicas, thaw
}

// TestFailoverReclaimNoHealthyReplica: asynchronous mode, both replicas
// tagged nofailover. The primary is killed (daemon and PostgreSQL): no
// replica qualifies, so the failover waits; when the old primary's daemon
// comes back it finds its data directory intact and reports so, and the
// coordinator promotes it again under the next token (reclaim) — a chaos
// run had waited without a primary in such a situation, its replicas
// unable to report (docs/benchmarks.md, "Chaos", finding 5).
func TestFailoverReclaimNoHealthyReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := launchPrepared(t, 3, "")
	for _, n := range c.Nodes[1:] {
		f, err := os.OpenFile(n.ConfigPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString("\n[cluster.tags]\nnofailover = \"true\"\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatal(err)
	}
	old := waitWritable(t, c, 30*time.Second, nil)
	if old != c.Nodes[0] {
		t.Fatalf("%s is primary; the test tags the others nofailover and needs %s", old.Name, c.Nodes[0].Name)
	}
	replicas := c.Nodes[1:]
	if _, err := connect(t, ctx, old).Exec(ctx, "CREATE TABLE kept AS SELECT g FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	before, err := replicas[0].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	waitFailoverPhase(t, ctx, replicas, 30*time.Second, "no eligible candidate")
	restartReclaimed(t, ctx, c, old, before.FencingToken, "kept", 100, nil)
}

// restartReclaimed starts the killed old primary's daemon and requires
// that it is promoted again under token+1 (reclaim), with all rows of
// table, and that the replicas follow it.
// waitFailoverPhase waits until one of nodes reports a failover phase
// containing want (why its coordinator is not promoting), and logs it.
func waitFailoverPhase(t *testing.T, ctx context.Context, nodes []*cluster.Node, within time.Duration, want string) {
	t.Helper()
	eventually(t, within, func() string {
		for _, r := range nodes {
			s, err := r.Status(ctx)
			if err != nil {
				return err.Error()
			}
			if strings.Contains(s.FailoverPhase, want) {
				t.Logf("%s: failover phase: %s", r.Name, s.FailoverPhase)
				return ""
			}
		}
		return fmt.Sprintf("no coordinator reports a failover phase containing %q", want)
	})
}

func restartReclaimed(t *testing.T, ctx context.Context, c *cluster.Cluster, old *cluster.Node, token uint64, table string, rows int, thaw func()) {
	t.Helper()
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	p := waitWritable(t, c, 45*time.Second, nil)
	if p != old {
		t.Fatalf("%s writable, want the old primary %s promoted again", p.Name, old.Name)
	}
	s, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.FencingToken != token+1 {
		t.Fatalf("token %d after the reclaim, want %d", s.FencingToken, token+1)
	}
	var got int
	if err := connect(t, ctx, p).QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&got); err != nil || got != rows {
		t.Fatalf("the reclaimed primary has %d rows in %s (%v), want all %d", got, table, err, rows)
	}
	if thaw != nil {
		thaw() // the replicas may stream again, from the reclaimed primary
	}
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatalf("the replicas do not follow the reclaimed primary: %v", err)
	}
}
