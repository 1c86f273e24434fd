package e2e

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestClusterForms is the foundation's acceptance test: three daemons and
// three PostgreSQL servers form a cluster by themselves, every node tells
// the same story, and a stopped daemon is noticed within 3 s.
func TestClusterForms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	began := time.Now()
	c := launch(t, 3, "")
	wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
	st, err := c.WaitFormed(wctx)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster formed in %.1f s (primary: node %d)", time.Since(began).Seconds(), st.PrimaryNodeID)

	// Exactly one primary, checked in PostgreSQL itself.
	var primary *cluster.Node
	var replicas []*cluster.Node
	for _, n := range c.Nodes {
		var inRecovery bool
		if err := connect(t, ctx, n).QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if inRecovery {
			replicas = append(replicas, n)
			continue
		}
		if primary != nil {
			t.Fatalf("two primaries: %s and %s", primary.Name, n.Name)
		}
		primary = n
	}
	if primary == nil || len(replicas) != 2 {
		t.Fatalf("want one primary and two replicas, got primary=%v replicas=%d", primary, len(replicas))
	}
	if primary.ID != st.PrimaryNodeID {
		t.Fatalf("API says primary is node %d, PostgreSQL says %s", st.PrimaryNodeID, primary.Name)
	}

	// Two replicas streaming, named by application_name.
	pconn := connect(t, ctx, primary)
	rows, err := pconn.Query(ctx, "SELECT application_name, state FROM pg_stat_replication ORDER BY application_name")
	if err != nil {
		t.Fatal(err)
	}
	streaming := map[string]string{}
	for rows.Next() {
		var app, state string
		if err := rows.Scan(&app, &state); err != nil {
			t.Fatal(err)
		}
		streaming[app] = state
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, r := range replicas {
		if streaming[r.Name] != "streaming" {
			t.Fatalf("pg_stat_replication on %s: %s is %q (all: %v)", primary.Name, r.Name, streaming[r.Name], streaming)
		}
	}

	// A row written on the primary is readable on both replicas.
	if _, err := pconn.Exec(ctx, "CREATE TABLE e2e_formation (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pconn.Exec(ctx, "INSERT INTO e2e_formation VALUES (1, 'written on the primary')"); err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		conn := connect(t, ctx, r)
		eventually(t, 10*time.Second, func() string {
			var note string
			if err := conn.QueryRow(ctx, "SELECT note FROM e2e_formation WHERE id = 1").Scan(&note); err != nil {
				return fmt.Sprintf("%s: %v", r.Name, err)
			}
			return ""
		})
	}

	// Every node's API reports the same primary and all three nodes.
	for _, n := range c.Nodes {
		s, err := n.Status(ctx)
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if s.PrimaryNodeID != primary.ID || len(s.Nodes) != 3 {
			t.Fatalf("%s reports primary %d and %d nodes, want %d and 3", n.Name, s.PrimaryNodeID, len(s.Nodes), primary.ID)
		}
	}

	// /primary answers 200 on exactly one node, for GET, HEAD and OPTIONS
	// (HAProxy's default check), and /replica on the two others.
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		ok := 0
		for _, n := range c.Nodes {
			code := httpStatus(method, n.APIURL()+"/primary")
			switch {
			case code == 200 && n == primary:
				ok++
			case code == 200:
				t.Fatalf("%s /primary on replica %s answered 200", method, n.Name)
			case code != 503:
				t.Fatalf("%s /primary on %s answered %d, want 503", method, n.Name, code)
			}
		}
		if ok != 1 {
			t.Fatalf("%s /primary: %d nodes answered 200, want exactly 1", method, ok)
		}
	}
	for _, r := range replicas {
		if code := httpStatus(http.MethodGet, r.APIURL()+"/replica"); code != 200 {
			t.Fatalf("/replica on %s answered %d", r.Name, code)
		}
	}

	// Stopping one replica's daemon: every other node shows it not alive
	// within 3 s.
	stopped := replicas[0]
	if err := stopped.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	others := []*cluster.Node{primary, replicas[1]}
	took := eventually(t, 3*time.Second, func() string {
		for _, n := range others {
			s, err := n.Status(ctx)
			if err != nil {
				return err.Error()
			}
			ns, ok := s.Node(stopped.ID)
			if !ok {
				return fmt.Sprintf("%s no longer lists %s", n.Name, stopped.Name)
			}
			if ns.State == "alive" {
				return fmt.Sprintf("%s still sees %s alive", n.Name, stopped.Name)
			}
		}
		return ""
	})
	t.Logf("stopped daemon seen as not alive by every other node after %s", took.Round(time.Millisecond))
	if err := stopped.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon %s exited %.1f s after SIGTERM", stopped.Name, time.Since(stopAt).Seconds())
	if _, err := stopped.Status(ctx); err == nil {
		t.Fatalf("%s API still answers after stop", stopped.Name)
	}

	// A crashed daemon (kill -9) is declared dead by SWIM failure
	// detection rather than by a goodbye: measure it too.
	crashed := replicas[1]
	if err := crashed.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 10*time.Second, func() string {
		s, err := primary.Status(ctx)
		if err != nil {
			return err.Error()
		}
		if ns, _ := s.Node(crashed.ID); ns.State != "dead" {
			return fmt.Sprintf("%s sees %s %s", primary.Name, crashed.Name, ns.State)
		}
		return ""
	})
	t.Logf("killed daemon declared dead after %s", took.Round(time.Millisecond))
}
