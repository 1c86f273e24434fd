package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

// launch starts an n-node cluster under a fresh directory and stops it
// (and any PostgreSQL left behind) when the test ends. On failure the
// daemons' logs are printed.
func launch(t *testing.T, n int, extra string) *cluster.Cluster {
	t.Helper()
	c := launchPrepared(t, n, extra)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// launchPrepared writes the cluster's config files without starting it.
func launchPrepared(t *testing.T, n int, extra string) *cluster.Cluster {
	t.Helper()
	return prepare(t, cluster.Options{Nodes: n, Extra: extra})
}

// prepare writes a cluster's config files under a fresh directory and
// registers its teardown (daemons, PostgreSQL, network, files), which
// prints the daemons' logs when the test failed or RAMD_E2E_LOGS is set.
func prepare(t *testing.T, opts cluster.Options) *cluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "ramd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir, opts.Binary, opts.LogLevel = dir, ramdBin, "debug"
	c, err := cluster.Prepare(opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	withBackend(t, c, opts)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
		if t.Failed() || os.Getenv("RAMD_E2E_LOGS") != "" {
			for _, node := range c.Nodes {
				dumpLog(t, node.LogPath)
			}
		}
		os.RemoveAll(dir)
	})
	return c
}

func dumpLog(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if os.Getenv("RAMD_E2E_LOGS") != "all" {
		// Debug lines (mostly memberlist's) would push the story out.
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, `"level":"debug"`) })
		if len(lines) > 120 {
			lines = lines[len(lines)-120:]
		}
	}
	t.Logf("---- last lines of %s ----\n%s", filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), strings.Join(lines, "\n"))
}

func connect(t *testing.T, ctx context.Context, n *cluster.Node) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		t.Fatalf("connect to %s: %v", n.Name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// httpStatus returns the status code of method url (0 when unreachable).
func httpStatus(method, url string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond every 50 ms until it returns "" or the deadline
// passes, and returns how long it took.
func eventually(t *testing.T, within time.Duration, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < within {
		if why = cond(); why == "" {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not within %s: %s", within, why)
	return 0
}

// apiCall sends body (JSON, or nothing when empty) with the admin token
// and returns the status and the raw answer.
func apiCall(t *testing.T, token, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
