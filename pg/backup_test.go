package pg_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// TestBackupAndRestore: a base backup of a primary verifies, records its
// WAL range, and restored over a standby's data directory (moved aside)
// comes back as a streaming standby that holds the backed-up rows and
// then the rows written after the backup.
func TestBackupAndRestore(t *testing.T) {
	requireServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	pcfg := pgtest.Config(t)
	primary := pgtest.NewManager(t, pcfg)
	if err := primary.InitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	src := pg.Endpoint{Host: "127.0.0.1", Port: pcfg.Port}
	scfg := pgtest.Config(t)
	standby := pgtest.NewManager(t, scfg)
	slot := pg.SlotName("node2")
	if err := standby.CloneFrom(ctx, src, slot, "node2"); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, primary.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 1000)")

	root := filepath.Join(pgtest.TempDir(t), "backups")
	if err := primary.PrepareBackupDir(root); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "b1")
	var reports int
	t0 := time.Now()
	if err := primary.BaseBackup(ctx, src, target, "ramd test", func(done, total int64) {
		reports++
		if done < 0 || total <= 0 {
			t.Errorf("progress %d/%d", done, total)
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("base backup took %s (%d progress reports)", time.Since(t0), reports)
	if reports == 0 {
		t.Error("no progress reported")
	}
	if err := primary.VerifyBackup(ctx, target); err != nil {
		t.Fatalf("verify: %v", err)
	}
	rng, err := pg.ReadBackupRange(target)
	if err != nil || rng.Timeline != 1 || rng.StartLSN == 0 || rng.EndLSN < rng.StartLSN {
		t.Fatalf("range %+v, %v", rng, err)
	}
	if err := primary.BaseBackup(ctx, src, target, "again", nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing target: %v", err)
	}

	// A damaged backup fails verification.
	if err := os.WriteFile(filepath.Join(target, "PG_VERSION"), []byte("14\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := primary.VerifyBackup(ctx, target); err == nil {
		t.Error("a damaged backup verified")
	}
	if err := os.WriteFile(filepath.Join(target, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	exec("INSERT INTO b SELECT generate_series(1001, 1500)")

	// A broken stream puts the old directory back.
	var bad bytes.Buffer
	tw := tar.NewWriter(&bad)
	_ = tw.WriteHeader(&tar.Header{Name: "../escape", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	if _, err := standby.RestoreFrom(ctx, &bad, src, slot, "node2", nil); err == nil || !strings.Contains(err.Error(), "unsafe name") || !strings.Contains(err.Error(), "back in place") {
		t.Fatalf("restore of a bad stream: %v", err)
	}
	if st, err := standby.DataState(); err != nil || st != pg.StateInitialized {
		t.Fatalf("after the failed restore: %v %v", st, err)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(pg.WriteTar(pw, target)) }()
	var unpacked int64
	moved, err := standby.RestoreFrom(ctx, pr, src, slot, "node2", func(n int64) { unpacked = n })
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if moved == "" || !strings.Contains(moved, ".before-restore-") {
		t.Errorf("old data directory moved to %q", moved)
	}
	if _, err := os.Stat(filepath.Join(moved, "PG_VERSION")); err != nil {
		t.Errorf("moved-aside directory: %v", err)
	}
	if unpacked == 0 {
		t.Error("no unpack progress")
	}
	if _, err := os.Stat(filepath.Join(scfg.DataDir, "backup_manifest")); !os.IsNotExist(err) {
		t.Errorf("backup_manifest left in the data directory: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := standby.WaitStreaming(wctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "restored standby has every row", func() error {
		conn, err := pgx.Connect(ctx, standby.ConnString())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM b").Scan(&n); err != nil {
			return err
		}
		if n != 1500 {
			return fmt.Errorf("%d rows", n)
		}
		return nil
	})
	h := standby.Check(ctx)
	if !h.InRecovery || !h.Streaming {
		t.Errorf("restored server: %+v", h)
	}
}
