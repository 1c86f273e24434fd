package e2e

import (
	"context"
	"fmt"
	"os/exec"
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
// than the operator allowed); the coordinator's phase says why. A manual
// failover then promotes the most advanced one, and it takes writes.
func TestFailoverLagBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
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
	defer func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
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
	for _, pid := range frozen {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	frozen = nil

	// Detection and the lease take about 3 s; the coordinator then waits.
	eventually(t, 20*time.Second, func() string {
		for _, r := range replicas {
			s, err := r.Status(ctx)
			if err != nil {
				return err.Error()
			}
			if strings.Contains(s.FailoverPhase, "behind the failed primary's last seen position") {
				t.Logf("%s: failover phase: %s", r.Name, s.FailoverPhase)
				return ""
			}
		}
		return "no coordinator reports that the replicas lag behind the failed primary"
	})
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

	// The operator's call: the most advanced replica (a manual failover
	// still refuses one behind another replica).
	cand, best := replicas[0], int64(-1)
	for _, r := range replicas {
		var lsn int64
		if err := connect(t, ctx, r).QueryRow(ctx, "SELECT (greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) - '0/0')::bigint").Scan(&lsn); err != nil {
			t.Fatalf("%s: position: %v", r.Name, err)
		}
		if lsn > best {
			cand, best = r, lsn
		}
	}
	out, err := exec.CommandContext(ctx, ramctlBin, "--url", replicas[1].APIURL(), "--token", c.Token,
		"failover", "--candidate", fmt.Sprint(cand.ID), "--force").CombinedOutput()
	if err != nil {
		t.Fatalf("manual failover: %v: %s", err, out)
	}
	t.Logf("ramctl: %s", strings.TrimSpace(string(out)))
	p := waitWritable(t, c, 30*time.Second, old)
	if p != cand {
		t.Fatalf("%s writable, want %s", p.Name, cand.Name)
	}
	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE after_manual (id int)"); err != nil {
		t.Fatalf("write on the manually promoted primary: %v", err)
	}
}
