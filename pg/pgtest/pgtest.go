// Package pgtest has helpers for tests that run real PostgreSQL servers:
// temp directories the server's user can use, free ports, the binaries
// (skipping, or failing under CI, when they are missing), ready-made node
// configurations, and cleanup that leaves no postmaster behind.
package pgtest

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/pg"
)

// Passwords Config puts in every node's configuration, so nodes of one
// test can clone from each other.
const (
	SuperuserPassword   = "ramd-test-su"
	ReplicationPassword = "ramd-test-repl"
)

// runAsUser is who PostgreSQL runs as when the tests run as root
// (pg.Config.RunAsUser's default).
const runAsUser = "postgres"

// TempDir returns a new directory under /tmp (short, for unix socket
// paths) that PostgreSQL's user can traverse and write: when running as
// root it is owned by "postgres". At cleanup every server whose data
// directory lies under it is stopped, then it is removed.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "ramd-")
	if err != nil {
		t.Fatalf("pgtest: temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := StopServersUnder(dir); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: remove %s: %v", dir, err)
		}
	})
	if os.Geteuid() == 0 {
		uid, gid, err := lookupIDs(runAsUser)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatalf("pgtest: chown %s: %v", dir, err)
		}
	}
	return dir
}

func lookupIDs(name string) (int, int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	return uid, gid, errors.Join(err1, err2)
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BinDir returns the PostgreSQL bin directory. Without one the test is
// skipped, except under CI (CI set), where a missing PostgreSQL must fail
// loudly rather than turn the suite silently green.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, err := pg.FindBinDir("")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	return dir
}

// Config returns a node configuration in a fresh TempDir: data directory
// <tmp>/data, socket directory <tmp>/run, a free port on 127.0.0.1, the
// test passwords, and a logger writing to the test's output.
func Config(t testing.TB) pg.Config {
	t.Helper()
	bin := BinDir(t)
	dir := TempDir(t)
	return pg.Config{
		BinDir:              bin,
		DataDir:             filepath.Join(dir, "data"),
		Host:                "127.0.0.1",
		Port:                FreePort(t),
		SocketDir:           filepath.Join(dir, "run"),
		Superuser:           "postgres",
		SuperuserPassword:   SuperuserPassword,
		Database:            "postgres",
		ReplicationUser:     "replicator",
		ReplicationPassword: ReplicationPassword,
		ConnectTimeout:      3 * time.Second,
		Logger:              Logger(t),
	}
}

// Logger logs at debug level to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// NewManager is pg.New that fails the test on error and, at cleanup,
// closes the manager and stops its server immediately.
func NewManager(t testing.TB, cfg pg.Config) *pg.Manager {
	t.Helper()
	m, err := pg.New(cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(ctx, pg.StopImmediate); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return m
}

// StopServersUnder stops, as pg_ctl stop -m immediate does (SIGQUIT to the
// postmaster), every running server whose data directory lies under dir,
// and waits for them to exit. It finds servers started by anyone, e.g. by a
// ramd daemon a test ran as a subprocess.
func StopServersUnder(dir string) error {
	var errs []error
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if _, err := os.Stat(filepath.Join(path, "PG_VERSION")); err != nil {
			return nil
		}
		errs = append(errs, stopServer(path))
		return filepath.SkipDir
	})
	return errors.Join(errs...)
}

func stopServer(dataDir string) error {
	pid, ok := postmasterOf(dataDir)
	if !ok {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return errors.New("pgtest: postmaster " + strconv.Itoa(pid) + " of " + dataDir + " ignored SIGQUIT; killed")
}

// postmasterOf is the live postmaster of dataDir, checked through its
// working directory so that a stale pid file never gets a stranger killed.
func postmasterOf(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0, false
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return pid, true
	}
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	return pid, cwd == want
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}
