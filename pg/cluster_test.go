package pg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// Passwords with every character that needs quoting somewhere: in the
// initdb pwfile, SQL (format %L), conninfo and postgresql.conf.
const (
	nastySuperPW = `su'pa\ss "wörd"`
	nastyReplPW  = `re'pl\ pw`
)

func requireServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real PostgreSQL servers")
	}
}

// waitFor polls cond until it returns nil or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tcpDSN(port int, user, password string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable connect_timeout=3 password='%s'",
		port, user, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password))
}

func TestPrimaryAndStandby(t *testing.T) {
	requireServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	pcfg := pgtest.Config(t)
	pcfg.SuperuserPassword, pcfg.ReplicationPassword = nastySuperPW, nastyReplPW
	pcfg.HBANetworks = []string{"127.0.0.0/8"}
	pcfg.Parameters = map[string]string{"work_mem": "8MB"}
	primary := pgtest.NewManager(t, pcfg)

	t0 := time.Now()
	if st, err := primary.DataState(); err != nil || st != pg.StateEmpty {
		t.Fatalf("DataState before bootstrap = %v, %v", st, err)
	}
	if err := primary.InitPrimary(ctx); err != nil {
		t.Fatalf("InitPrimary: %v", err)
	}
	t.Logf("InitPrimary took %s", time.Since(t0))

	t.Run("primary health", func(t *testing.T) {
		h := primary.Check(ctx)
		if h.Error != "" || !h.Running || !h.Accepting || h.InRecovery {
			t.Fatalf("Check = %+v", h)
		}
		if h.Timeline != 1 || h.CurrentLSN == 0 || h.SystemID == 0 || !strings.HasPrefix(h.Version, "15") {
			t.Errorf("Check = %+v", h)
		}
		if st, err := primary.DataState(); err != nil || st != pg.StateInitialized {
			t.Errorf("DataState after bootstrap = %v, %v", st, err)
		}
		if _, err := os.Stat(primary.LogFile()); err != nil {
			t.Errorf("server log: %v", err)
		}
	})

	t.Run("parameters and socket", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, primary.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var workMem, perms string
		if err := conn.QueryRow(ctx, "SELECT current_setting('work_mem'), current_setting('unix_socket_permissions')").Scan(&workMem, &perms); err != nil {
			t.Fatal(err)
		}
		if workMem != "8MB" || perms != "0700" {
			t.Errorf("work_mem = %s, unix_socket_permissions = %s", workMem, perms)
		}
	})

	t.Run("password auth over TCP", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, tcpDSN(pcfg.Port, "postgres", nastySuperPW))
		if err != nil {
			t.Fatalf("superuser with the right password: %v", err)
		}
		conn.Close(ctx)
		for _, pw := range []string{"wrong", ""} {
			conn, err = pgx.Connect(ctx, tcpDSN(pcfg.Port, "postgres", pw))
			if err == nil {
				conn.Close(ctx)
				t.Errorf("password %q accepted over TCP", pw)
			}
		}
		conn, err = pgx.Connect(ctx, tcpDSN(pcfg.Port, "replicator", nastyReplPW))
		if err != nil {
			t.Fatalf("replicator: %v", err)
		}
		conn.Close(ctx)
	})

	t.Run("bootstrap refuses an initialized directory", func(t *testing.T) {
		if err := primary.InitPrimary(ctx); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("second InitPrimary: %v", err)
		}
	})

	src := pg.Endpoint{Host: "127.0.0.1", Port: pcfg.Port}

	t.Run("basebackup failure keeps nothing and drops its slot", func(t *testing.T) {
		cfg := pgtest.Config(t)
		cfg.SuperuserPassword, cfg.ReplicationPassword = nastySuperPW, "wrong"
		m := pgtest.NewManager(t, cfg)
		err := m.CloneFrom(ctx, src, "ramd_bad", "bad")
		if err == nil {
			t.Fatal("CloneFrom with a wrong replication password succeeded")
		}
		if !strings.Contains(err.Error(), "pg: pg_basebackup: exit status") || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("error lacks pg_basebackup's reason: %v", err)
		}
		if st, err := m.DataState(); err != nil || st != pg.StateEmpty {
			t.Errorf("DataState after failed clone = %v, %v", st, err)
		}
		if failed, _ := filepath.Glob(cfg.DataDir + ".failed-*"); len(failed) != 0 {
			t.Errorf("nothing was written, yet moved aside: %v", failed)
		}
		if slotExists(t, primary, "ramd_bad") {
			t.Error("slot created by the failed clone was not dropped")
		}
	})

	scfg := pgtest.Config(t)
	scfg.SuperuserPassword, scfg.ReplicationPassword = nastySuperPW, nastyReplPW
	standby := pgtest.NewManager(t, scfg)
	slot := pg.SlotName("node2")
	t0 = time.Now()
	if err := standby.CloneFrom(ctx, src, slot, "node2"); err != nil {
		t.Fatalf("CloneFrom: %v", err)
	}
	t.Logf("CloneFrom took %s", time.Since(t0))

	t.Run("standby health", func(t *testing.T) {
		var h pg.Health
		waitFor(t, 15*time.Second, "standby streaming", func() error {
			h = standby.Check(ctx)
			if !h.Streaming {
				return fmt.Errorf("%+v", h)
			}
			return nil
		})
		if !h.Running || !h.Accepting || !h.InRecovery || h.ReceiverStatus != "streaming" {
			t.Errorf("Check = %+v", h)
		}
		if h.UpstreamHost != "127.0.0.1" || h.UpstreamPort != pcfg.Port {
			t.Errorf("upstream = %s:%d, want 127.0.0.1:%d", h.UpstreamHost, h.UpstreamPort, pcfg.Port)
		}
		if h.Timeline != 1 || h.ReceiveLSN == 0 || h.ReplayLSN == 0 || h.CurrentLSN != 0 {
			t.Errorf("Check = %+v", h)
		}
	})

	t.Run("primary lists the standby", func(t *testing.T) {
		waitFor(t, 15*time.Second, "standby in pg_stat_replication", func() error {
			return standbyRow(primary.Check(ctx), "node2", "streaming")
		})
	})

	t.Run("replication", func(t *testing.T) {
		pconn, err := pgx.Connect(ctx, primary.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer pconn.Close(ctx)
		if _, err := pconn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		sconn, err := pgx.Connect(ctx, standby.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer sconn.Close(ctx)
		waitFor(t, 15*time.Second, "row replicated", func() error {
			var x int
			if err := sconn.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil {
				return err
			}
			if x != 42 {
				return fmt.Errorf("x = %d", x)
			}
			return nil
		})
		h := primary.Check(ctx)
		if err := standbyRow(h, "node2", "streaming"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("system id", func(t *testing.T) {
		pid, err1 := primary.SystemID(ctx)
		sid, err2 := standby.SystemID(ctx)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if pid == 0 || pid != sid {
			t.Errorf("system ids: primary %d, standby %d", pid, sid)
		}
		if h := primary.Check(ctx); h.SystemID != pid {
			t.Errorf("Check system id %d, pg_controldata %d", h.SystemID, pid)
		}
	})

	t.Run("cancelled clone is moved aside", func(t *testing.T) {
		cfg := pgtest.Config(t)
		cfg.SuperuserPassword, cfg.ReplicationPassword = nastySuperPW, nastyReplPW
		m := pgtest.NewManager(t, cfg)
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		// Cancel as soon as pg_basebackup has written something.
		go func() {
			for cctx.Err() == nil {
				if entries, _ := os.ReadDir(cfg.DataDir); len(entries) > 0 {
					t.Logf("cancelling with %d entries written", len(entries))
					ccancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		err := m.CloneFrom(cctx, src, "ramd_cancel", "cancel")
		if err == nil {
			t.Fatal("cancelled CloneFrom succeeded")
		}
		failed, _ := filepath.Glob(cfg.DataDir + ".failed-*")
		if len(failed) != 1 || !strings.Contains(err.Error(), "moved to "+failed[0]) {
			t.Fatalf("partial copy not moved aside (%v): %v", failed, err)
		}
		if !strings.Contains(err.Error(), "pg: pg_basebackup:") || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("error = %v", err)
		}
		if st, err := m.DataState(); err != nil || st != pg.StateEmpty {
			t.Errorf("DataState after moving aside = %v, %v", st, err)
		}
		if slotExists(t, primary, "ramd_cancel") {
			t.Error("slot created by the cancelled clone was not dropped")
		}
	})

	t.Run("check reconnects after losing its session", func(t *testing.T) {
		if h := primary.Check(ctx); h.Error != "" {
			t.Fatal(h.Error)
		}
		conn, err := pgx.Connect(ctx, primary.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'ramd' AND pid <> pg_backend_pid()").Scan(&n); err != nil || n == 0 {
			t.Fatalf("terminated %d sessions: %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
		if h := primary.Check(ctx); h.Error != "" || !h.Accepting {
			t.Errorf("Check after its session was killed = %+v", h)
		}
		t0 := time.Now()
		for i := 0; i < 20; i++ {
			primary.Check(ctx)
		}
		t.Logf("Check takes %s", time.Since(t0)/20)
	})

	t.Run("clone refuses an initialized directory", func(t *testing.T) {
		if err := standby.CloneFrom(ctx, src, slot, "node2"); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("second CloneFrom: %v", err)
		}
	})

	t.Run("stop and start", func(t *testing.T) {
		if err := standby.Stop(ctx, pg.StopFast); err != nil {
			t.Fatal(err)
		}
		if pid, ok := standby.Running(); ok {
			t.Fatalf("still running as %d after Stop", pid)
		}
		if h := standby.Check(ctx); h.Running || h.Accepting {
			t.Errorf("Check after stop = %+v", h)
		}
		if err := standby.Stop(ctx, pg.StopFast); err != nil {
			t.Errorf("Stop of a stopped server: %v", err)
		}
		if err := standby.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := standby.Start(ctx); err != nil {
			t.Errorf("Start of a running server: %v", err)
		}
		waitFor(t, 15*time.Second, "standby streaming again", func() error {
			if h := standby.Check(ctx); !h.Streaming || !h.InRecovery {
				return fmt.Errorf("%+v", h)
			}
			return nil
		})
	})

	t.Run("set primary", func(t *testing.T) {
		if err := standby.SetPrimary(ctx, src, slot, "node2b"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "standby reconnected under its new name", func() error {
			return standbyRow(primary.Check(ctx), "node2b", "streaming")
		})
	})

	t.Run("interrupted bootstrap is resumed", func(t *testing.T) {
		// As if ramd died after initdb: server down, marker still there.
		if err := primary.Stop(ctx, pg.StopImmediate); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(pcfg.DataDir, "ramd.bootstrap-pending")
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := primary.InitPrimary(ctx); err != nil {
			t.Fatalf("resumed InitPrimary: %v", err)
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Errorf("marker left behind: %v", err)
		}
		if h := primary.Check(ctx); !h.Accepting || h.InRecovery {
			t.Errorf("Check after resumed bootstrap = %+v", h)
		}
	})
}

func standbyRow(h pg.Health, app, state string) error {
	if h.Error != "" {
		return errors.New(h.Error)
	}
	for _, s := range h.Standbys {
		if s.ApplicationName == app && s.State == state {
			if s.ClientAddr != "127.0.0.1" || s.SentLSN == 0 {
				return fmt.Errorf("standby row %+v", s)
			}
			return nil
		}
	}
	return fmt.Errorf("no %s standby %q in %+v", state, app, h.Standbys)
}

func slotExists(t *testing.T, m *pg.Manager, slot string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestCloneFromUnreachable(t *testing.T) {
	requireServer(t)
	cfg := pgtest.Config(t)
	m := pgtest.NewManager(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad := pg.Endpoint{Host: "127.0.0.1", Port: pgtest.FreePort(t)}
	err := m.CloneFrom(ctx, bad, "ramd_x", "x")
	if err == nil {
		t.Fatal("CloneFrom an unreachable source succeeded")
	}
	if !strings.HasPrefix(err.Error(), "pg: clone:") || !strings.Contains(err.Error(), strconv.Itoa(bad.Port)) {
		t.Errorf("error = %v", err)
	}
	if st, err := m.DataState(); err != nil || st != pg.StateEmpty {
		t.Errorf("DataState after failed clone = %v, %v", st, err)
	}
	if failed, _ := filepath.Glob(cfg.DataDir + ".failed-*"); len(failed) != 0 {
		t.Errorf("moved aside although nothing was written: %v", failed)
	}
}

func TestDataState(t *testing.T) {
	cfg := pgtest.Config(t)
	m, err := pg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	state := func() (pg.State, error) { return m.DataState() }

	if st, err := state(); err != nil || st != pg.StateEmpty {
		t.Errorf("missing dir: %v, %v", st, err)
	}
	if err := os.Mkdir(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if st, err := state(); err != nil || st != pg.StateEmpty {
		t.Errorf("empty dir: %v, %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := state(); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL data directory") {
		t.Errorf("non-PG dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if st, err := state(); err != nil || st != pg.StateInitialized {
			t.Errorf("own data dir: %v, %v", st, err)
		}
		return
	}
	// As root, a root-owned data directory is wrong: PostgreSQL runs as postgres.
	_, err = state()
	if err == nil || !strings.Contains(err.Error(), "owned by root") || !strings.Contains(err.Error(), "postgres") {
		t.Errorf("root-owned dir: %v", err)
	}
	if err := os.Chown(cfg.DataDir, uidOf(t, "postgres"), -1); err != nil {
		t.Fatal(err)
	}
	if st, err := state(); err != nil || st != pg.StateInitialized {
		t.Errorf("postgres-owned data dir: %v, %v", st, err)
	}
}
