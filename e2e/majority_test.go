package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

// TestRecoverLostMajority follows docs/operations.md, "Recover from
// losing the majority", "When they are gone for good": two of three nodes
// (the primary among them) are killed for good, the surviving replica is
// not promoted (no majority) and the cluster reports failed; then the
// runbook's steps on the survivor — stop, move the state directory and
// standby.signal aside, new cluster_name, expect_nodes = 1, start — make
// it the primary of a new cluster that takes writes, and a node whose
// data and state were moved aside joins it as a streaming replica.
func TestRecoverLostMajority(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, p := formedPrimary(t, ctx)
	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE majority_check (id int PRIMARY KEY); INSERT INTO majority_check VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var survivor, other *cluster.Node
	for _, n := range c.Nodes {
		if n != p {
			if survivor == nil {
				survivor = n
			} else {
				other = n
			}
		}
	}
	waitReplicasStreaming(t, c, p)
	// The row must be on the survivor before the others die: this test
	// is about the procedure, not about asynchronous loss.
	eventually(t, 30*time.Second, func() string {
		conn, err := connectNode(ctx, survivor)
		if err != nil {
			return err.Error()
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM majority_check").Scan(&n); err != nil || n != 1 {
			return fmt.Sprintf("row not replayed on the survivor yet (%v)", err)
		}
		return ""
	})

	// Lose the majority: kill -9 of the primary and the other replica,
	// daemons and PostgreSQL.
	for _, n := range []*cluster.Node{p, other} {
		if err := n.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := n.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.StopPostgres(); err != nil {
			t.Fatal(err)
		}
	}
	// The survivor sees the cluster failed and stays a replica: nothing
	// can be promoted without a majority.
	eventually(t, 30*time.Second, func() string {
		code, body := apiCall(t, c.Token, "GET", survivor.APIURL()+"/api/v1/cluster/health", "")
		if code != 503 || !strings.Contains(body, `"failed"`) {
			return fmt.Sprintf("cluster health %d: %s", code, body)
		}
		return ""
	})
	if code := httpStatus("GET", survivor.APIURL()+"/primary"); code == 200 {
		t.Fatal("the survivor answers /primary without a majority")
	}

	// The runbook, on the survivor.
	if err := survivor.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	mustRename(t, survivor.StateDir, survivor.StateDir+".lost-majority")
	mustRename(t, filepath.Join(survivor.DataDir, "standby.signal"), filepath.Join(filepath.Dir(survivor.DataDir), "standby.signal.lost-majority"))
	newCluster := func(n *cluster.Node) {
		b, err := os.ReadFile(n.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for old, repl := range map[string]string{`cluster_name = "demo"`: `cluster_name = "demo2"`, "expect_nodes = 3": "expect_nodes = 1"} {
			if !strings.Contains(s, old) {
				t.Fatalf("%s has no %q", n.ConfigPath, old)
			}
			s = strings.ReplaceAll(s, old, repl)
		}
		if err := os.WriteFile(n.ConfigPath, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newCluster(survivor)
	started := time.Now()
	if err := survivor.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() string {
		s, err := survivor.Status(ctx)
		if err != nil {
			return err.Error()
		}
		if s.ClusterName != "demo2" || s.PrimaryNodeID != survivor.ID || s.FencingToken != 1 {
			return fmt.Sprintf("cluster %s primary %d token %d", s.ClusterName, s.PrimaryNodeID, s.FencingToken)
		}
		if code := httpStatus("GET", survivor.APIURL()+"/primary"); code != 200 {
			return fmt.Sprintf("/primary answers %d", code)
		}
		return ""
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if _, err := connect(t, wctx, survivor).Exec(wctx, "INSERT INTO majority_check VALUES (2)"); err != nil {
		t.Fatalf("write on the recovered primary: %v", err)
	}
	t.Logf("the survivor took writes as the new cluster's primary %.1fs after it was started", time.Since(started).Seconds())

	// A lost node rebuilt from nothing joins the new cluster: its data
	// and state moved aside (never deleted), the new cluster_name.
	mustRename(t, other.DataDir, other.DataDir+".old-cluster")
	mustRename(t, other.StateDir, other.StateDir+".old-cluster")
	newCluster(other)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, func() string {
		s, err := survivor.Status(ctx)
		if err != nil {
			return err.Error()
		}
		ns, ok := s.Node(other.ID)
		if !ok || ns.Role != "replica" || !ns.Streaming || !ns.Healthy {
			return fmt.Sprintf("%s: %+v", other.Name, ns)
		}
		return ""
	})
	eventually(t, 30*time.Second, func() string {
		conn, err := connectNode(ctx, other)
		if err != nil {
			return err.Error()
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM majority_check").Scan(&n); err != nil || n != 2 {
			return fmt.Sprintf("%d rows on the new replica (%v)", n, err)
		}
		return ""
	})
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// connectNode connects to n's PostgreSQL, returning the error (for
// polling) rather than failing the test.
func connectNode(ctx context.Context, n *cluster.Node) (*pgx.Conn, error) {
	return pgx.Connect(ctx, n.DSN())
}
