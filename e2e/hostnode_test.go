package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/apiclient"
	"github.com/ramd/ramd/internal/cluster"
)

// hostNode is a ramd started the way a deployment starts it (the systemd
// unit's command line, the container entrypoint) rather than by
// internal/cluster's launcher: the tests of the deployment files use it
// to run exactly what those files say.
type hostNode struct {
	name    string
	id      int
	apiURL  string
	pgPort  int
	dataDir string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startHostNode runs argv with env (added to this process's environment)
// as the given OS user ("" for the current one), logging to logPath. The
// test's cleanup stops it with SIGTERM, stops any PostgreSQL left in
// dataDir and prints the log when the test failed.
func startHostNode(t *testing.T, n *hostNode, argv, env []string, osUser string) {
	t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if osUser != "" {
		uid, gid := lookupUser(t, osUser)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", n.name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.stop(t)
		if err := (&cluster.Node{DataDir: n.dataDir}).StopPostgres(); err != nil {
			t.Errorf("%s: %v", n.name, err)
		}
		if t.Failed() || os.Getenv("RAMD_E2E_LOGS") != "" {
			dumpLog(t, n.logPath)
		}
	})
}

// stop sends SIGTERM and waits for the daemon to exit (SIGKILL after a
// minute).
func (n *hostNode) stop(t *testing.T) {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(60 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Errorf("%s did not stop within 60s after SIGTERM", n.name)
	}
}

func (n *hostNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func lookupUser(t *testing.T, name string) (uint32, uint32) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

// waitHostCluster waits until every node sees the same primary holding
// its lease and every other node as a healthy streaming replica, and
// returns the primary.
func waitHostCluster(t *testing.T, ctx context.Context, nodes []*hostNode, token string) *hostNode {
	t.Helper()
	var primary *hostNode
	eventually(t, 120*time.Second, func() string {
		primary = nil
		for _, n := range nodes {
			if n.exited() {
				t.Fatalf("%s exited; see its log", n.name)
			}
			c := &apiclient.Client{URLs: []string{n.apiURL}, Token: token, Timeout: 2 * time.Second}
			r, err := c.Get(ctx, "/api/v1/cluster/status")
			if err != nil {
				return n.name + ": " + err.Error()
			}
			var s apiclient.Status
			if err := r.Decode(&s); err != nil {
				return n.name + ": " + err.Error()
			}
			if s.PrimaryNodeID == 0 {
				return n.name + " sees no primary"
			}
			if len(s.Nodes) != len(nodes) {
				return fmt.Sprintf("%s sees %d of %d nodes", n.name, len(s.Nodes), len(nodes))
			}
			for _, ns := range s.Nodes {
				switch {
				case ns.State != "alive" || !ns.Healthy:
					return fmt.Sprintf("%s sees %s %s healthy=%v", n.name, ns.Name, ns.State, ns.Healthy)
				case ns.NodeID == s.PrimaryNodeID && ns.Role != "primary":
					return fmt.Sprintf("%s sees %s as %s", n.name, ns.Name, ns.Role)
				case ns.NodeID != s.PrimaryNodeID && (ns.Role != "replica" || !ns.Streaming):
					return fmt.Sprintf("%s sees %s as %s (streaming=%v)", n.name, ns.Name, ns.Role, ns.Streaming)
				}
			}
			for _, m := range nodes {
				if m.id == s.PrimaryNodeID {
					if primary != nil && primary != m {
						return "nodes disagree on the primary"
					}
					primary = m
				}
			}
		}
		if primary == nil {
			return "the primary is not one of the started nodes"
		}
		if code := httpStatus("GET", primary.apiURL+"/primary"); code != 200 {
			return fmt.Sprintf("%s's /primary answers %d (lease not held yet)", primary.name, code)
		}
		return ""
	})
	return primary
}

// waitRow waits until the row id of table is visible on n.
func waitRow(t *testing.T, ctx context.Context, n *hostNode, password, table string, id int) {
	t.Helper()
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=3", n.pgPort, password)
	eventually(t, 30*time.Second, func() string {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return n.name + ": " + err.Error()
		}
		defer conn.Close(ctx)
		var got int
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE id = $1", table), id).Scan(&got); err != nil {
			return n.name + ": " + err.Error()
		}
		if got != 1 {
			return fmt.Sprintf("%s: row %d of %s not there yet", n.name, id, table)
		}
		return ""
	})
}

// accessibleBinaries makes the directory of the binaries under test
// readable and searchable by other users (os.MkdirTemp made it 0700), for
// daemons started as the postgres user.
func accessibleBinaries(t *testing.T) {
	t.Helper()
	if err := os.Chmod(filepath.Dir(ramdBin), 0o755); err != nil {
		t.Fatal(err)
	}
}

// withPath returns PATH with dirs in front.
func withPath(dirs ...string) string {
	return "PATH=" + strings.Join(append(dirs, os.Getenv("PATH")), string(os.PathListSeparator))
}
