package gate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/gate"
	"github.com/ramd/ramd/pg/pgtest"
)

// syncWaitWarning is what PostgreSQL says when it stops waiting for the
// synchronous standby (here: the gate) because the statement was
// cancelled: the commit is then local only, in doubt, not acknowledged.
const syncWaitWarning = "canceling wait for synchronous replication"

// primary is a running PostgreSQL primary for the gate tests.
type primary struct {
	m    *pg.Manager
	cfg  pg.Config
	conn *pgx.Conn // superuser, for setup and inspection
}

func startPrimary(t *testing.T, ctx context.Context) *primary {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real PostgreSQL server")
	}
	cfg := pgtest.Config(t)
	m := pgtest.NewManager(t, cfg)
	if err := m.InitPrimary(ctx); err != nil {
		t.Fatalf("InitPrimary: %v", err)
	}
	conn, err := pgx.Connect(ctx, m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	p := &primary{m: m, cfg: cfg, conn: conn}
	// pg's generated pg_hba.conf trusts the socket for databases only; the
	// gate's replication connection over the socket needs this line too
	// (the daemon wiring adds it to pg's renderHBA; see the report).
	hba := filepath.Join(cfg.DataDir, "pg_hba.conf")
	f, err := os.OpenFile(hba, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("local   replication  all            trust\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	p.exec(t, ctx, "SELECT pg_reload_conf()")
	p.exec(t, ctx, "CREATE TABLE t (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
	return p
}

func (p *primary) exec(t testing.TB, ctx context.Context, sql string) {
	t.Helper()
	if _, err := p.conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// socketConnString is the gate's connection: the unix socket, trust.
func (p *primary) socketConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s replication=true sslmode=disable", p.cfg.SocketDir, p.cfg.Port, p.cfg.Superuser)
}

// tcpConnString is the gate's connection as the replication user over
// loopback, which pg's pg_hba.conf allows as it is.
func (p *primary) tcpConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s replication=true sslmode=disable",
		p.cfg.Port, p.cfg.ReplicationUser, pgtest.ReplicationPassword)
}

// requireGate sets synchronous_standby_names to the gate as the daemon's
// managed conf will (here through ALTER SYSTEM) or, with on false, clears
// it; then waits until pg_stat_replication agrees.
func (p *primary) requireGate(t testing.TB, ctx context.Context, on bool) {
	t.Helper()
	val := ""
	if on {
		val = gate.PrimarySettings(gate.DefaultAppName)["synchronous_standby_names"]
	}
	p.exec(t, ctx, fmt.Sprintf("ALTER SYSTEM SET synchronous_standby_names = '%s'", strings.ReplaceAll(val, "'", "''")))
	p.exec(t, ctx, "SELECT pg_reload_conf()")
	waitFor(t, 10*time.Second, "synchronous_standby_names applied", func() error {
		var got string
		if err := p.conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&got); err != nil {
			return err
		}
		if got != val {
			return fmt.Errorf("synchronous_standby_names = %q", got)
		}
		return nil
	})
}

// waitSync waits until the gate is connected and PostgreSQL counts it as
// the synchronous standby.
func (p *primary) waitSync(t testing.TB, ctx context.Context) {
	t.Helper()
	waitFor(t, 10*time.Second, "gate is the synchronous standby", func() error {
		var state string
		err := p.conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", gate.DefaultAppName).Scan(&state)
		if err != nil {
			return err
		}
		if state != "sync" {
			return fmt.Errorf("sync_state = %s", state)
		}
		return nil
	})
}

// waitStreaming waits until the gate is connected and streaming. Before
// it has confirmed anything on its connection, PostgreSQL lists it as
// async: it ignores standbys without a flush position (commits still
// wait, for want of a synchronous standby).
func (p *primary) waitStreaming(t testing.TB, ctx context.Context) {
	t.Helper()
	waitFor(t, 10*time.Second, "gate is streaming", func() error {
		var state string
		err := p.conn.QueryRow(ctx, "SELECT state FROM pg_stat_replication WHERE application_name = $1", gate.DefaultAppName).Scan(&state)
		if err != nil {
			return err
		}
		if state != "streaming" {
			return fmt.Errorf("state = %s", state)
		}
		return nil
	})
}

// waitGone waits until no gate is connected.
func (p *primary) waitGone(t testing.TB, ctx context.Context) {
	t.Helper()
	waitFor(t, 10*time.Second, "gate disconnected", func() error {
		var n int
		if err := p.conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1", gate.DefaultAppName).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d gate connections", n)
		}
		return nil
	})
}

// writer is a client session that records the warnings it gets.
type writer struct {
	conn     *pgx.Conn
	mu       sync.Mutex
	warnings []string
}

func (p *primary) newWriter(t testing.TB, ctx context.Context) *writer {
	t.Helper()
	w := &writer{}
	cc, err := pgx.ParseConfig(p.m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	// Cancel a statement whose context ends with a cancel request, as
	// libpq clients do, so that the server reports what happened to the
	// waiting commit (pgconn's default would just cut the connection).
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
	}
	cc.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		w.mu.Lock()
		w.warnings = append(w.warnings, n.Message)
		w.mu.Unlock()
	}
	w.conn, err = pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.conn.Close(context.Background()) })
	return w
}

// insert commits one row, cancelling the statement after timeout, and
// reports how long it took and whether PostgreSQL gave up waiting for the
// gate. statement_timeout would not do: PostgreSQL disarms it before the
// commit, so it never ends a wait for a synchronous standby; only a
// cancel request (or termination) does.
func (w *writer) insert(ctx context.Context, timeout time.Duration) (id int, took time.Duration, gaveUp bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.mu.Lock()
	w.warnings = nil
	w.mu.Unlock()
	t0 := time.Now()
	err = w.conn.QueryRow(ctx, "INSERT INTO t DEFAULT VALUES RETURNING id").Scan(&id)
	took = time.Since(t0)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.warnings {
		if strings.Contains(m, syncWaitWarning) {
			gaveUp = true
		}
	}
	return id, took, gaveUp, err
}

// runGate starts g.Run in the background; the returned stop cancels it
// and waits for Run to return.
func runGate(t testing.TB, g *gate.Gate) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
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
		time.Sleep(20 * time.Millisecond)
	}
}
