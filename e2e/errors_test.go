package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// runRamd runs the ramd binary with args and returns its exit code and
// output streams.
func runRamd(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ramdBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ramd %v did not finish within %s; stderr:\n%s", args, timeout, stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// writeConfig writes a one-node config whose ports are free, with body
// appended (later keys in a section are not allowed twice, so body adds
// sections or replaces none).
func writeConfig(t *testing.T, dir, extraCluster, extraPG, extraAPI string) string {
	t.Helper()
	ports := freePorts(t, 4)
	cfg := fmt.Sprintf(`[cluster]
node_id = 1
data_directory = %q
%s
[mesh]
bind_addr = "127.0.0.1"
bind_port = %d
[api]
host = "127.0.0.1"
%s
[postgresql]
port = %d
password = "secret"
%s
[monitoring]
prometheus_port = %d
`, filepath.Join(dir, "data"), extraCluster, ports[0], apiPortLine(extraAPI, ports[1]), ports[2], extraPG, ports[3])
	path := filepath.Join(dir, "ramd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func apiPortLine(extra string, port int) string {
	if strings.Contains(extra, "port") {
		return extra
	}
	return fmt.Sprintf("port = %d\n%s", port, extra)
}

func freePorts(t *testing.T, n int) []int {
	ports, err := cluster.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ramd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// oneLineError checks that a failed start printed exactly one line on
// stderr, naming what to fix.
func oneLineError(t *testing.T, code int, stderr string, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("ramd exited 0, want an error")
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 {
		t.Fatalf("want a one-line error, got %d lines:\n%s", len(lines), stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Fatalf("error %q does not mention %q", lines[0], w)
		}
	}
	t.Logf("error shown to the user: %s", lines[0])
}

func TestStartupErrors(t *testing.T) {
	t.Run("config error", func(t *testing.T) {
		dir := tempDir(t)
		path := writeConfig(t, dir, "nod_name = \"x\"", "", "")
		code, _, stderr := runRamd(t, 30*time.Second, "start", "--foreground", "--config", path)
		oneLineError(t, code, stderr, "cluster.nod_name")
		code, _, stderr = runRamd(t, 30*time.Second, "config", "validate", "--config", path)
		oneLineError(t, code, stderr, "cluster.nod_name")
	})
	t.Run("missing PostgreSQL", func(t *testing.T) {
		dir := tempDir(t)
		path := writeConfig(t, dir, "", "bin_directory = \"/nonexistent/pg/bin\"", "")
		code, _, stderr := runRamd(t, 30*time.Second, "start", "--foreground", "--config", path)
		oneLineError(t, code, stderr, "postgresql")
		if !strings.Contains(stderr, "install") {
			t.Fatalf("error does not say what to install: %s", stderr)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		dir := tempDir(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		path := writeConfig(t, dir, "", "", fmt.Sprintf("port = %d", port))
		code, _, stderr := runRamd(t, 30*time.Second, "start", "--foreground", "--config", path)
		oneLineError(t, code, stderr, "api.port", "already in use")
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Fatal("a failed start created the data directory")
		}
	})
	t.Run("foreign data directory", func(t *testing.T) {
		// A one-node cluster initialises its data directory; the node's
		// recorded identity is then made to name another cluster, as
		// when a data directory from elsewhere is copied into place.
		c := launch(t, 1, "")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if _, err := c.WaitFormed(ctx); err != nil {
			t.Fatal(err)
		}
		n := c.Nodes[0]
		if err := n.Stop(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		idPath := filepath.Join(n.StateDir, "cluster.json")
		b, err := os.ReadFile(idPath)
		if err != nil {
			t.Fatal(err)
		}
		var id map[string]any
		if err := json.Unmarshal(b, &id); err != nil {
			t.Fatal(err)
		}
		id["system_id"] = "12345"
		b, _ = json.Marshal(id)
		if err := os.WriteFile(idPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runRamd(t, 60*time.Second, "start", "--config", n.ConfigPath)
		oneLineError(t, code, stderr, "system identifier", "move")
		if _, err := os.Stat(filepath.Join(n.DataDir, "PG_VERSION")); err != nil {
			t.Fatalf("data directory damaged after refusal: %v", err)
		}
		if _, err := os.Stat(filepath.Join(n.DataDir, "postmaster.pid")); err == nil {
			t.Fatal("PostgreSQL was started on a foreign data directory")
		}
	})
}
