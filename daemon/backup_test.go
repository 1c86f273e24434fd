package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/configs"
)

func backupDaemon(t *testing.T) *Daemon {
	t.Helper()
	cfg := configs.Default()
	cfg.Cluster.NodeID, cfg.Cluster.NodeName = 2, "node2"
	cfg.Backup.Directory = t.TempDir()
	return &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler)}
}

func addBackup(t *testing.T, d *Daemon, info api.BackupInfo) {
	t.Helper()
	dir := d.backupPath(info.Name)
	if err := os.MkdirAll(filepath.Join(dir, backupDataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeBackupMeta(dir, info); err != nil {
		t.Fatal(err)
	}
}

func opStatus(err error) int {
	var oe *api.OpError
	if errors.As(err, &oe) {
		return oe.Status
	}
	return 0
}

func TestLocalBackupsMetadata(t *testing.T) {
	d := backupDaemon(t)
	addBackup(t, d, api.BackupInfo{Name: "b2", Status: "done", Verified: true, EndLSN: "0/3000100", Timeline: 1, Created: "2026-01-02T00:00:00Z"})
	// A backup still marked running that is not this daemon's job was
	// interrupted by a restart.
	addBackup(t, d, api.BackupInfo{Name: "b1", Status: "running", Created: "2026-01-01T00:00:00Z"})
	// Directories that are not backups are not listed.
	if err := os.Mkdir(filepath.Join(d.backupRoot(), "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := d.LocalBackups()
	if len(l) != 2 || l[0].Name != "b1" || l[1].Name != "b2" {
		t.Fatalf("LocalBackups = %+v", l)
	}
	if l[0].Status != "failed" || l[0].Error == "" || l[0].NodeID != 2 {
		t.Errorf("interrupted backup: %+v", l[0])
	}
	if !l[1].Verified || l[1].EndLSN != "0/3000100" || l[1].NodeID != 2 {
		t.Errorf("finished backup: %+v", l[1])
	}
	// The running job's live state wins over the file.
	d.backups.current = &api.BackupInfo{Name: "b1", Status: "running", Progress: 42}
	if info, err := d.readBackupMeta("b1"); err != nil || info.Status != "running" || info.Progress != 42 {
		t.Errorf("running backup: %+v %v", info, err)
	}
	d.backups.current = nil

	ctx := context.Background()
	if _, err := d.GetBackup(ctx, "nope", 2); opStatus(err) != http.StatusNotFound {
		t.Errorf("missing backup: %v", err)
	}
	if _, err := d.GetBackup(ctx, "../etc", 2); opStatus(err) != http.StatusBadRequest {
		t.Errorf("bad name: %v", err)
	}
	if _, err := d.CreateBackup(ctx, "a/b", 0); opStatus(err) != http.StatusBadRequest {
		t.Errorf("create with a bad name: %v", err)
	}
	d.backups.sending = map[string]int{"b2": 1}
	if _, err := d.DeleteBackup(ctx, "b2", 2); opStatus(err) != http.StatusConflict {
		t.Errorf("delete while sending: %v", err)
	}
	d.backups.sending["b2"] = 0
	if _, err := d.DeleteBackup(ctx, "b2", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.backupPath("b2")); !os.IsNotExist(err) {
		t.Errorf("deleted backup still there: %v", err)
	}
	if _, err := d.RestoreStatus(ctx, 2); opStatus(err) != http.StatusNotFound {
		t.Errorf("restore status before any restore: %v", err)
	}
}
