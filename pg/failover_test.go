package pg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// node is one PostgreSQL server of a failover test.
type node struct {
	name string
	cfg  pg.Config
	m    *pg.Manager
}

func (n *node) ep() pg.Endpoint { return pg.Endpoint{Host: n.cfg.Host, Port: n.cfg.Port} }
func (n *node) slot() string    { return pg.SlotName(n.name) }

func newPrimary(t *testing.T, ctx context.Context, name string) *node {
	t.Helper()
	cfg := pgtest.Config(t)
	n := &node{name: name, cfg: cfg, m: pgtest.NewManager(t, cfg)}
	if err := n.m.InitPrimary(ctx); err != nil {
		t.Fatalf("%s: InitPrimary: %v", name, err)
	}
	return n
}

func newStandby(t *testing.T, ctx context.Context, name string, of *node) *node {
	t.Helper()
	cfg := pgtest.Config(t)
	n := &node{name: name, cfg: cfg, m: pgtest.NewManager(t, cfg)}
	if err := n.m.CloneFrom(ctx, of.ep(), n.slot(), name); err != nil {
		t.Fatalf("%s: CloneFrom(%s): %v", name, of.name, err)
	}
	return n
}

func (n *node) exec(t *testing.T, ctx context.Context, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, n.m.ConnString())
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %s: %v", n.name, sql, err)
	}
}

// rows returns the sorted values of t.v.
func (n *node) rows(ctx context.Context) ([]string, error) {
	conn, err := pgx.Connect(ctx, n.m.ConnString())
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, "SELECT v FROM t ORDER BY v")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(r, pgx.RowTo[string])
}

// waitRows waits until n's table t holds exactly want.
func (n *node) waitRows(t *testing.T, ctx context.Context, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, 15*time.Second, n.name+" rows "+strings.Join(want, ","), func() error {
		got, err := n.rows(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("rows = %v", got)
		}
		return nil
	})
}

// requireStreamingFrom checks that n is a standby streaming from up on
// timeline tli and that up lists it in pg_stat_replication.
func requireStreamingFrom(t *testing.T, ctx context.Context, n, up *node, tli uint32) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.m.WaitStreaming(wctx); err != nil {
		t.Fatalf("%s: WaitStreaming: %v", n.name, err)
	}
	// The receiver's timeline follows the upstream's history a moment
	// after streaming starts.
	waitFor(t, 15*time.Second, n.name+" streams from "+up.name+" on the new timeline", func() error {
		h := n.m.Check(ctx)
		if !h.InRecovery || !h.Streaming || h.Timeline != tli || h.UpstreamPort != up.cfg.Port {
			return fmt.Errorf("Check = %+v, want streaming from port %d on timeline %d", h, up.cfg.Port, tli)
		}
		return nil
	})
	waitFor(t, 15*time.Second, up.name+" lists "+n.name, func() error {
		return standbyRow(up.m.Check(ctx), n.name, "streaming")
	})
}

func checkpointTimeline(t *testing.T, ctx context.Context, n *node) int32 {
	t.Helper()
	conn, err := pgx.Connect(ctx, n.m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tli int32
	if err := conn.QueryRow(ctx, "SELECT (pg_control_checkpoint()).timeline_id").Scan(&tli); err != nil {
		t.Fatal(err)
	}
	return tli
}

// streamingPair starts primary node1 and its streaming standby node2, with
// a table t holding one row that the standby has received.
func streamingPair(t *testing.T, ctx context.Context, row string) (p, s *node) {
	t.Helper()
	p = newPrimary(t, ctx, "node1")
	s = newStandby(t, ctx, "node2", p)
	p.exec(t, ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('"+row+"')")
	s.waitRows(t, ctx, row)
	return p, s
}

func TestPromoteAndFence(t *testing.T) {
	requireServer(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, s := streamingPair(t, ctx, "before")

	if err := p.m.Promote(ctx); !errors.Is(err, pg.ErrNotStandby) || !strings.HasPrefix(err.Error(), "pg: promote:") {
		t.Errorf("Promote of a primary: %v", err)
	}

	// Fence: immediate, no shutdown checkpoint, idempotent.
	t0 := time.Now()
	if err := p.m.Fence(ctx); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	t.Logf("Fence took %s", time.Since(t0))
	if pid, ok := p.m.Running(); ok {
		t.Fatalf("postmaster %d still running after Fence", pid)
	}
	if st, err := p.m.ControlState(); err != nil || st != pg.ControlInProduction {
		t.Errorf("ControlState after Fence = %q, %v; want %q (no shutdown checkpoint)", st, err, pg.ControlInProduction)
	}
	if err := p.m.Fence(ctx); err != nil {
		t.Errorf("second Fence: %v", err)
	}
	if tli, err := p.m.Timeline(ctx); err != nil || tli != 1 {
		t.Errorf("Timeline of the stopped old primary = %d, %v", tli, err)
	}

	t0 = time.Now()
	if err := s.m.Promote(ctx); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	t.Logf("Promote (with checkpoint) took %s", time.Since(t0))
	h := s.m.Check(ctx)
	if !h.Accepting || h.InRecovery || h.Timeline != 2 {
		t.Fatalf("Check after Promote = %+v", h)
	}
	if tli, err := s.m.Timeline(ctx); err != nil || tli != 2 {
		t.Errorf("Timeline after Promote = %d, %v", tli, err)
	}
	if tli := checkpointTimeline(t, ctx, s); tli != 2 {
		t.Errorf("checkpoint timeline after Promote = %d, want 2 (Promote checkpoints)", tli)
	}
	s.exec(t, ctx, "INSERT INTO t VALUES ('after')")
	s.waitRows(t, ctx, "before", "after")
	if err := s.m.Promote(ctx); !errors.Is(err, pg.ErrNotStandby) {
		t.Errorf("second Promote: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "postgresql.ramd.conf"))
	if err != nil || strings.Contains(string(data), "primary_conninfo") {
		t.Errorf("upstream left in the managed file after Promote (%v):\n%s", err, data)
	}
	if st, err := s.m.ControlState(); err != nil || st != pg.ControlInProduction {
		t.Errorf("ControlState of the running new primary = %q, %v", st, err)
	}
}

func TestDemoteAfterCleanSwitch(t *testing.T) {
	requireServer(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, s := streamingPair(t, ctx, "before")

	// Clean switch: the old primary stops (fast: its shutdown checkpoint
	// reaches the standby) before the standby is promoted.
	if err := p.m.Stop(ctx, pg.StopFast); err != nil {
		t.Fatal(err)
	}
	if err := s.m.Promote(ctx); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if err := s.m.EnsureSlots(ctx, []string{p.slot(), "ramd_extra"}); err != nil {
		t.Fatalf("EnsureSlots: %v", err)
	}
	if err := s.m.EnsureSlots(ctx, []string{p.slot()}); err != nil {
		t.Errorf("EnsureSlots again: %v", err)
	}
	if !slotExists(t, s.m, p.slot()) || !slotExists(t, s.m, "ramd_extra") {
		t.Fatal("slots missing after EnsureSlots")
	}
	for i := 0; i < 2; i++ {
		if err := s.m.DropSlot(ctx, "ramd_extra"); err != nil {
			t.Errorf("DropSlot #%d: %v", i+1, err)
		}
	}
	if slotExists(t, s.m, "ramd_extra") {
		t.Error("slot still there after DropSlot")
	}
	if err := s.m.EnsureSlots(ctx, []string{"Bad-Name"}); err == nil {
		t.Error("EnsureSlots accepted an invalid slot name")
	}

	t0 := time.Now()
	if err := p.m.Demote(ctx, s.ep(), p.slot(), p.name); err != nil {
		t.Fatalf("Demote: %v", err)
	}
	requireStreamingFrom(t, ctx, p, s, 2)
	t.Logf("Demote to streaming took %s", time.Since(t0))
	s.exec(t, ctx, "INSERT INTO t VALUES ('after')")
	p.waitRows(t, ctx, "before", "after")

	// Demote of a standby only repoints it.
	pid, _ := p.m.Running()
	if err := p.m.Demote(ctx, s.ep(), p.slot(), "node1b"); err != nil {
		t.Fatalf("Demote of a standby: %v", err)
	}
	if pid2, _ := p.m.Running(); pid2 != pid {
		t.Errorf("Demote of a standby restarted it (pid %d -> %d)", pid, pid2)
	}
	waitFor(t, 15*time.Second, "repointed standby", func() error {
		return standbyRow(s.m.Check(ctx), "node1b", "streaming")
	})
}

// TestRewindAndReclone is the old primary coming back: it kept taking
// writes after the standby was promoted (split brain), is fenced, cannot
// simply follow (ErrDiverged), is rewound onto the new timeline; then a
// rewind that cannot work (a source from another cluster) fails and
// Reclone rebuilds it.
func TestRewindAndReclone(t *testing.T) {
	requireServer(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, s := streamingPair(t, ctx, "common")

	if err := s.m.Promote(ctx); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	p.exec(t, ctx, "INSERT INTO t VALUES ('p-after-fork'); CHECKPOINT; INSERT INTO t VALUES ('p-after-checkpoint')")
	s.exec(t, ctx, "INSERT INTO t VALUES ('s-after-fork')")
	if err := p.m.Fence(ctx); err != nil {
		t.Fatalf("Fence: %v", err)
	}

	t.Run("demote of a diverged primary reports ErrDiverged", func(t *testing.T) {
		if err := p.m.Demote(ctx, s.ep(), p.slot(), p.name); err != nil {
			t.Fatalf("Demote: %v", err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		t0 := time.Now()
		err := p.m.WaitStreaming(wctx)
		if !errors.Is(err, pg.ErrDiverged) {
			t.Fatalf("WaitStreaming = %v, want ErrDiverged", err)
		}
		t.Logf("divergence detected after %s: %v", time.Since(t0), err)
	})

	t.Run("rewind", func(t *testing.T) {
		t0 := time.Now()
		if err := p.m.Rewind(ctx, s.ep(), p.slot(), p.name); err != nil {
			t.Fatalf("Rewind: %v", err)
		}
		t.Logf("Rewind (stop, pg_rewind, start) took %s", time.Since(t0))
		requireStreamingFrom(t, ctx, p, s, 2)
		p.waitRows(t, ctx, "common", "s-after-fork")
		s.exec(t, ctx, "INSERT INTO t VALUES ('s-after-rewind')")
		p.waitRows(t, ctx, "common", "s-after-fork", "s-after-rewind")
		// the local log survived pg_rewind (it would hold the source's)
		data, err := os.ReadFile(p.m.LogFile())
		if err != nil || !strings.Contains(string(data), "received immediate shutdown request") {
			t.Errorf("old primary's log lost by the rewind (%v)", err)
		}
	})

	t.Run("fenced primary is rewound after crash recovery", func(t *testing.T) {
		// A promoted standby that lost: p is promoted (timeline 3) while
		// s stays primary on 2; both take writes; p is fenced (state
		// "in production") and goes straight into Rewind.
		if err := p.m.Promote(ctx); err != nil {
			t.Fatal(err)
		}
		p.exec(t, ctx, "INSERT INTO t VALUES ('p-timeline-3')")
		s.exec(t, ctx, "INSERT INTO t VALUES ('s-while-p-on-3')")
		if err := p.m.Fence(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := p.m.ControlState(); err != nil || st != pg.ControlInProduction {
			t.Fatalf("ControlState = %q, %v", st, err)
		}
		t0 := time.Now()
		if err := p.m.Rewind(ctx, s.ep(), p.slot(), p.name); err != nil {
			t.Fatalf("Rewind: %v", err)
		}
		t.Logf("Rewind from a fenced primary took %s", time.Since(t0))
		requireStreamingFrom(t, ctx, p, s, 2)
		p.waitRows(t, ctx, "common", "s-after-fork", "s-after-rewind", "s-while-p-on-3")
	})

	t.Run("rewind from another cluster fails, reclone works", func(t *testing.T) {
		other := newPrimary(t, ctx, "other")
		err := p.m.Rewind(ctx, other.ep(), p.slot(), p.name)
		if err == nil || !strings.HasPrefix(err.Error(), "pg: rewind:") || !strings.Contains(err.Error(), "different systems") {
			t.Fatalf("Rewind from another cluster: %v", err)
		}
		if _, err := os.Stat(filepath.Join(p.cfg.DataDir, "standby.signal")); err != nil {
			t.Errorf("failed Rewind left no standby.signal: %v", err)
		}
		bad := pg.Endpoint{Host: "127.0.0.1", Port: pgtest.FreePort(t)}
		if err := p.m.Reclone(ctx, bad, p.slot(), p.name); err == nil || !strings.HasPrefix(err.Error(), "pg: reclone:") {
			t.Errorf("Reclone from an unreachable source: %v", err)
		}
		if old, _ := filepath.Glob(p.cfg.DataDir + ".old-*"); len(old) != 0 {
			t.Errorf("Reclone from an unreachable source moved the data directory: %v", old)
		}
		s.exec(t, ctx, "INSERT INTO t VALUES ('s-before-reclone')")
		t0 := time.Now()
		if err := p.m.Reclone(ctx, s.ep(), p.slot(), p.name); err != nil {
			t.Fatalf("Reclone: %v", err)
		}
		t.Logf("Reclone took %s", time.Since(t0))
		old, _ := filepath.Glob(p.cfg.DataDir + ".old-*")
		if len(old) != 1 {
			t.Fatalf("moved-aside directories: %v", old)
		}
		if _, err := os.Stat(filepath.Join(old[0], "PG_VERSION")); err != nil {
			t.Errorf("moved-aside directory lost its content: %v", err)
		}
		requireStreamingFrom(t, ctx, p, s, 2)
		p.waitRows(t, ctx, "common", "s-after-fork", "s-after-rewind", "s-while-p-on-3", "s-before-reclone")
	})
}
