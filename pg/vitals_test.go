package pg_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// TestVitalSigns runs the statistics round against a real server and
// checks that each value moves with the activity that should move it.
func TestVitalSigns(t *testing.T) {
	requireServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := pgtest.NewManager(t, pgtest.Config(t))
	if err := m.InitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	v := m.NewVitals()
	defer v.Close()
	before, err := v.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.MaxConnections != 100 {
		t.Errorf("max_connections = %d, want the default 100", before.MaxConnections)
	}
	// The collector's own query is an active client backend.
	if before.Connections["active"] < 1 {
		t.Errorf("connections = %v, want at least one active", before.Connections)
	}
	if before.DatabaseSizeBytes["postgres"] <= 0 || before.DatabaseSizeBytes["template1"] <= 0 {
		t.Errorf("database sizes = %v", before.DatabaseSizeBytes)
	}
	if _, ok := before.DatabaseSizeBytes["template0"]; ok {
		t.Error("template0 (no connections allowed) is listed")
	}

	conn, err := pgx.Connect(ctx, m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("SELECT pg_create_physical_replication_slot('vitals_slot', true)")
	exec("CREATE TABLE vitals (id int PRIMARY KEY, pad text)")
	const commits = 20
	for i := range commits {
		exec(fmt.Sprintf("INSERT INTO vitals SELECT g, repeat('x', 100) FROM generate_series(%d, %d) g", i*1000, i*1000+999))
	}
	exec("BEGIN")
	exec("INSERT INTO vitals VALUES (-1, 'rolled back')")
	exec("ROLLBACK")
	exec("CHECKPOINT")
	// An idle backend reports its statistics up to 10 s late, an exiting
	// one at once.
	conn.Close(ctx)
	// A second client, idle in a transaction while the round runs.
	idle, err := pgx.Connect(ctx, m.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(ctx)
	if _, err := idle.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
		t.Fatal(err)
	}

	// Other backends' statistics reach shared memory within about a
	// second (PostgreSQL 15 flushes them when a backend goes idle, at
	// most once a second), so poll.
	var after pg.VitalSigns
	waitFor(t, 20*time.Second, "statistics to move", func() error {
		after, err = v.Collect(ctx)
		if err != nil {
			return err
		}
		switch {
		case after.XactCommit < before.XactCommit+commits:
			return fmt.Errorf("commits %d → %d", before.XactCommit, after.XactCommit)
		case after.XactRollback < before.XactRollback+1:
			return fmt.Errorf("rollbacks %d → %d", before.XactRollback, after.XactRollback)
		case after.BlocksHit+after.BlocksRead <= before.BlocksHit+before.BlocksRead:
			return fmt.Errorf("blocks %d+%d → %d+%d", before.BlocksHit, before.BlocksRead, after.BlocksHit, after.BlocksRead)
		case after.CheckpointsRequested < before.CheckpointsRequested+1:
			return fmt.Errorf("requested checkpoints %d → %d", before.CheckpointsRequested, after.CheckpointsRequested)
		case after.WALBytes < before.WALBytes+commits*1000*100:
			return fmt.Errorf("WAL bytes %d → %d", before.WALBytes, after.WALBytes)
		}
		return nil
	})
	if after.SlotRetainedBytes["vitals_slot"] < commits*1000*100 {
		t.Errorf("slot retention = %v, want at least the WAL written since it was created", after.SlotRetainedBytes)
	}
	if after.Connections["idle_in_transaction"] != 1 {
		t.Errorf("connections = %v, want one idle in transaction", after.Connections)
	}
	if after.DatabaseSizeBytes["postgres"] <= before.DatabaseSizeBytes["postgres"] {
		t.Errorf("postgres database did not grow: %d → %d", before.DatabaseSizeBytes["postgres"], after.DatabaseSizeBytes["postgres"])
	}
	t.Logf("vital signs after the inserts: %+v", after)

	// A stopped server is an error, and the next round after the start
	// reconnects.
	if err := m.Stop(ctx, pg.StopFast); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Collect(ctx); err == nil {
		t.Error("collecting from a stopped server succeeded")
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Collect(ctx); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}

func TestConnectionState(t *testing.T) {
	for in, want := range map[string]string{
		"active": "active", "idle in transaction (aborted)": "idle_in_transaction_aborted",
		"idle in transaction": "idle_in_transaction", "": "other", "fastpath function call": "fastpath_function_call",
	} {
		if got := pg.ConnectionState(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
