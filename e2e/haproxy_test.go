package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestHAProxy runs the shipped deploy/haproxy/haproxy.cfg (bind and server
// lines rewritten for the loopback cluster) with Debian's haproxy in front
// of a 3-node cluster in synchronous_mode = "quorum", and a writer that
// only knows HAProxy's port. Across a switchover and then an unplanned
// failover (kill -9 of the primary's daemon and PostgreSQL), the writer
// reaches the new primary through HAProxy each time, and no acknowledged
// row is lost.
func TestHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy is required in CI (.ci/run installs it): ", err)
		}
		t.Skip("haproxy not installed (apt-get install haproxy)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, p := formedPrimaryWith(t, ctx, "\n[failover]\nsynchronous_mode = \"quorum\"\n")
	ports, err := cluster.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := haproxyConfig(t, c, ports[0], ports[1])
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy rejects the configuration: %v\n%s", err, out)
	}
	hp := exec.Command(bin, "-db", "-f", path)
	var hpLog strings.Builder
	hp.Stdout, hp.Stderr = &hpLog, &hpLog
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = hp.Process.Kill()
		_ = hp.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", hpLog.String())
		}
	})

	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE e2e_haproxy (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w := c.NewWriter("e2e_haproxy", 20*time.Millisecond)
	w.DSN = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=1", ports[0], c.Password)
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	waitAcks(t, w, p)
	waitReplicasStreaming(t, c, p)

	// 1. Switchover, asked of a replica.
	var via *cluster.Node
	for _, n := range c.Nodes {
		if n != p {
			via = n
		}
	}
	if code, env := apiCall(t, c.Token, "POST", via.APIURL()+"/api/v1/cluster/switchover", ""); code != 200 {
		t.Fatalf("switchover: %d %s", code, env)
	}
	next := waitWritable(t, c, 30*time.Second, p)
	pause := haproxyResumed(t, w, p, next)
	t.Logf("switchover %s → %s: writes through HAProxy paused %.0f ms", p.Name, next.Name, pause.Seconds()*1000)

	// 2. Unplanned failover: kill -9 the new primary's daemon and PostgreSQL.
	waitReplicasStreaming(t, c, next)
	waitAcks(t, w, next)
	if err := next.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, next)
	third := waitWritable(t, c, 30*time.Second, next)
	pause = haproxyResumed(t, w, next, third)
	t.Logf("kill -9 of %s: writes through HAProxy resumed on %s after %.2f s", next.Name, third.Name, pause.Seconds())

	time.Sleep(500 * time.Millisecond)
	wstop()
	lost, acked, err := w.Lost(ctx, third)
	if err != nil {
		t.Fatal(err)
	}
	if lost > 0 {
		t.Errorf("synchronous_mode=quorum through HAProxy: %d of %d acknowledged rows lost", lost, acked)
	}
	t.Logf("%d rows acknowledged through HAProxy, %d lost", acked, lost)
}

// haproxyResumed waits until the writer (through HAProxy) has a write
// acknowledged by next after old's last, and returns the gap.
func haproxyResumed(t *testing.T, w *cluster.Writer, old, next *cluster.Node) time.Duration {
	t.Helper()
	last, ok := w.LastAckBefore(time.Now(), old.PGPort)
	if !ok {
		t.Fatalf("no write reached %s through HAProxy", old.Name)
	}
	var first time.Time
	eventually(t, 20*time.Second, func() string {
		at, ok := w.FirstAckAfter(last, next.PGPort)
		if !ok {
			return "no write reached " + next.Name + " through HAProxy"
		}
		first = at
		return ""
	})
	return first.Sub(last)
}

var bindLine = regexp.MustCompile(`(?m)^(\s*bind\s+)\S+$`)

// haproxyConfig is deploy/haproxy/haproxy.cfg with its two bind ports and
// its server lines rewritten for c.
func haproxyConfig(t *testing.T, c *cluster.Cluster, primaryPort, replicaPort int) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	binds := []int{primaryPort, replicaPort}
	i := 0
	cfg = bindLine.ReplaceAllStringFunc(cfg, func(s string) string {
		m := bindLine.FindStringSubmatch(s)
		if i >= len(binds) {
			t.Fatalf("more than two bind lines in haproxy.cfg")
		}
		out := fmt.Sprintf("%s127.0.0.1:%d", m[1], binds[i])
		i++
		return out
	})
	if i != 2 {
		t.Fatalf("haproxy.cfg has %d bind lines, want 2", i)
	}
	var servers strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%d maxconn 100 check port %d\n", n.Name, n.PGPort, n.APIPort)
	}
	// Replace each listen section's block of server lines by ours.
	blocks := regexp.MustCompile(`(?m)(^\s*server\s+.*\n)+`)
	n := 0
	cfg = blocks.ReplaceAllStringFunc(cfg, func(string) string { n++; return servers.String() })
	if n != 2 {
		t.Fatalf("haproxy.cfg has %d blocks of server lines, want 2", n)
	}
	return cfg
}
