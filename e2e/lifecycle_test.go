package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestCommandLineLifecycle drives one node the way an operator does:
// `ramd start` (detached), `status`, `health`, `info`, `stop`.
func TestCommandLineLifecycle(t *testing.T) {
	c := launchPrepared(t, 1, "")
	n := c.Nodes[0]
	code, out, stderr := runRamd(t, 90*time.Second, "start", "--config", n.ConfigPath)
	if code != 0 {
		t.Fatalf("ramd start: exit %d: %s", code, stderr)
	}
	t.Logf("%s", strings.TrimSpace(out))
	defer runRamd(t, 60*time.Second, "stop", "--config", n.ConfigPath)

	eventually(t, 60*time.Second, func() string {
		code, out, _ := runRamd(t, 10*time.Second, "status", "--config", n.ConfigPath)
		if code != 0 || !strings.Contains(out, "primary") || !strings.Contains(out, "Primary: node1") {
			return "status: " + out
		}
		return ""
	})
	code, out, _ = runRamd(t, 10*time.Second, "health", "--config", n.ConfigPath)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("health: exit %d: %s", code, out)
	}
	code, out, _ = runRamd(t, 10*time.Second, "info", "--config", n.ConfigPath, "--json")
	if code != 0 || !strings.Contains(out, `"role":"primary"`) {
		t.Fatalf("info --json: exit %d: %s", code, out)
	}
	code, _, stderr = runRamd(t, 10*time.Second, "start", "--config", n.ConfigPath)
	if code == 0 || !strings.Contains(stderr, "already running") {
		t.Fatalf("second start: exit %d: %s", code, stderr)
	}
	code, out, stderr = runRamd(t, 60*time.Second, "stop", "--config", n.ConfigPath)
	if code != 0 {
		t.Fatalf("stop: exit %d: %s %s", code, out, stderr)
	}
	code, _, stderr = runRamd(t, 10*time.Second, "status", "--config", n.ConfigPath)
	if code != 3 {
		t.Fatalf("status after stop: exit %d, want 3 (not running): %s", code, stderr)
	}
	code, _, _ = runRamd(t, 10*time.Second, "stop", "--config", n.ConfigPath)
	if code != 3 {
		t.Fatalf("stop when stopped: exit %d, want 3", code)
	}
	if err := n.StopPostgres(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Status(context.Background()); err == nil {
		t.Fatal("API still answers after ramd stop")
	}
}

// TestClusterRestart stops every daemon, one after the other, and starts
// them again: each node adopts its own data directory, a primary is
// elected again, the replicas stream and the data is still there. (As
// with Patroni, stopping the primary's daemon hands the primary role to a
// replica, so which node ends up primary depends on the stop order.)
func TestClusterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := launch(t, 3, "")
	st, err := c.WaitFormed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var primary = c.Nodes[st.PrimaryNodeID-1]
	conn := connect(t, ctx, primary)
	if _, err := conn.Exec(ctx, "CREATE TABLE survives (v text); INSERT INTO survives VALUES ('before restart')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for _, n := range c.Nodes {
		if err := n.Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	st2, err := c.WaitFormed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.FencingToken < st.FencingToken {
		t.Fatalf("fencing token went backwards across a restart: %d -> %d", st.FencingToken, st2.FencingToken)
	}
	t.Logf("primary before: node %d (token %d), after: node %d (token %d)", st.PrimaryNodeID, st.FencingToken, st2.PrimaryNodeID, st2.FencingToken)
	for _, n := range c.Nodes {
		var v string
		if err := connect(t, ctx, n).QueryRow(ctx, "SELECT v FROM survives").Scan(&v); err != nil {
			t.Fatalf("%s after restart: %v", n.Name, err)
		}
	}
}
