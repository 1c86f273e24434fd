package pg

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Base backups. A backup is pg_basebackup's plain format (-Fp) with its
// backup manifest, WAL streamed into it (-X stream), so it is
// self-contained and pg_verifybackup (which in PostgreSQL 15 reads only
// the plain format) checks every file's checksum and parses the WAL it
// needs. Restoring it is a copy; another node receives the copy as a tar
// stream (WriteTar / RestoreFrom).

// BackupProgress reports pg_basebackup's progress: kB done and the
// estimated total (the estimate may grow while the copy runs).
type BackupProgress func(doneKB, totalKB int64)

// progressRe matches pg_basebackup -P's report, "1234/56789 kB (2%), ...".
var progressRe = regexp.MustCompile(`(\d+)/(\d+) kB`)

// PrepareBackupDir creates dir (mode 0700, owned by the user PostgreSQL
// runs as, so pg_basebackup can write into it); an existing directory is
// left as it is.
func (m *Manager) PrepareBackupDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("pg: backup directory %q is not absolute", dir)
	}
	return m.user.mkdirOwned(filepath.Clean(dir), 0o700)
}

// BaseBackup copies the server at src into target (which must not exist;
// its parent must be writable by the run-as user) with pg_basebackup in
// plain format with a manifest, streaming the WAL the copy needs into it
// (a temporary slot keeps it). progress, when set, is called as
// pg_basebackup reports. On failure pg_basebackup removes what it wrote.
func (m *Manager) BaseBackup(ctx context.Context, src Endpoint, target, label string, progress BackupProgress) error {
	if err := src.validate(); err != nil {
		return err
	}
	if !filepath.IsAbs(target) {
		return fmt.Errorf("pg: backup: target %q is not absolute", target)
	}
	if hasControl(label) || len(label) > 1000 {
		return fmt.Errorf("pg: backup: invalid label %q", label)
	}
	if fileExists(target) {
		return fmt.Errorf("pg: backup: %s already exists", target)
	}
	args := []string{"-h", src.Host, "-p", strconv.Itoa(src.Port), "-U", m.cfg.ReplicationUser,
		"-D", target, "-Fp", "-X", "stream", "--checkpoint=fast", "-P", "-l", label,
		"--manifest-checksums=CRC32C", "-w"}
	env := []string{
		"PGPASSWORD=" + m.cfg.ReplicationPassword,
		"PGAPPNAME=ramd_backup",
		"PGCONNECT_TIMEOUT=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}
	if m.cfg.SSLMode != "" {
		env = append(env, "PGSSLMODE="+m.cfg.SSLMode)
	}
	m.log.Info("base backup started", "source", src.String(), "target", target)
	t0 := time.Now()
	plog := newProgressLog(m.log, "base backup", "source", src.String(), "target", target)
	report := func(done, total int64) {
		plog.report(done, total)
		if progress != nil {
			progress(done, total)
		}
	}
	if _, err := m.runProgress(ctx, "backup: pg_basebackup", "pg_basebackup", args, report, env...); err != nil {
		return err
	}
	m.log.Info("base backup finished", "source", src.String(), "target", target, "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// scanCRLF splits on '\n' or '\r' (pg_basebackup -P ends its reports
// with '\r' on a terminal).
func scanCRLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// VerifyBackup runs pg_verifybackup on a plain-format backup: every file
// against the manifest's checksums, and the WAL from the backup's start
// to its end parsed with pg_waldump.
func (m *Manager) VerifyBackup(ctx context.Context, dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("pg: verify backup: %q is not absolute", dir)
	}
	if _, err := m.run(ctx, "verify backup: pg_verifybackup", "pg_verifybackup", []string{"-q", dir}); err != nil {
		return err
	}
	return nil
}

// BackupRange is what a backup's manifest says about the WAL it needs.
type BackupRange struct {
	StartLSN LSN
	EndLSN   LSN
	Timeline uint32
}

// ReadBackupRange reads the WAL range of the plain-format backup in dir
// from its backup_manifest.
func ReadBackupRange(dir string) (BackupRange, error) {
	data, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		return BackupRange{}, fmt.Errorf("pg: backup manifest: %w", err)
	}
	var man struct {
		WALRanges []struct {
			Timeline uint32 `json:"Timeline"`
			Start    string `json:"Start-LSN"`
			End      string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(data, &man); err != nil {
		return BackupRange{}, fmt.Errorf("pg: backup manifest: %w", err)
	}
	if len(man.WALRanges) == 0 {
		return BackupRange{}, errors.New("pg: backup manifest: no WAL-Ranges")
	}
	first, last := man.WALRanges[0], man.WALRanges[len(man.WALRanges)-1]
	start, err1 := ParseLSN(first.Start)
	end, err2 := ParseLSN(last.End)
	if err := errors.Join(err1, err2); err != nil {
		return BackupRange{}, fmt.Errorf("pg: backup manifest: %w", err)
	}
	return BackupRange{StartLSN: start, EndLSN: end, Timeline: last.Timeline}, nil
}

// DirSize is the total size of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// WriteTar writes the contents of dir (directories and regular files;
// anything else is refused) to w as a tar stream with relative names.
func WriteTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is neither a directory nor a regular file (tablespaces are not supported)", rel)
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		// The header carries the size: copy exactly that.
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pg: tar %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("pg: tar %s: %w", dir, err)
	}
	return nil
}

// extractTar unpacks a WriteTar stream into dir (which exists), owned by
// the run-as user. Names must be relative and stay inside dir; only
// directories and regular files are accepted. count, when set, is called
// with the bytes written so far.
func (m *Manager) extractTar(r io.Reader, dir string, count func(int64)) error {
	tr := tar.NewReader(r)
	var written int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pg: restore: reading the backup stream: %w", err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
		if name == "" || filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return fmt.Errorf("pg: restore: unsafe name %q in the backup stream", hdr.Name)
		}
		path := filepath.Join(dir, name)
		perm := os.FileMode(hdr.Mode) & 0o700
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o700); err != nil {
				return fmt.Errorf("pg: restore: %w", err)
			}
			if err := os.Chmod(path, perm|0o700); err != nil {
				return fmt.Errorf("pg: restore: %w", err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return fmt.Errorf("pg: restore: %w", err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
			if err != nil {
				return fmt.Errorf("pg: restore: %w", err)
			}
			n, err := io.Copy(f, tr)
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("pg: restore: %s: %w", hdr.Name, err)
			}
			written += n
			if count != nil {
				count(written)
			}
		default:
			return fmt.Errorf("pg: restore: %q in the backup stream is neither a directory nor a regular file", hdr.Name)
		}
		if err := m.user.chown(path); err != nil {
			return err
		}
	}
}

// RestoreFrom replaces this server's data directory with the backup read
// from r (a WriteTar stream of a plain-format base backup of this
// cluster) and starts it as a standby of src: the server is stopped
// (fast, immediate if that fails), the data directory moved aside to
// "<DataDir>.before-restore-<UTC timestamp>" (never deleted; returned),
// the backup unpacked, the files a copy must not inherit removed
// (backup_manifest, the source's server log), standby.signal and the
// upstream (primary_conninfo for src with application_name appName,
// primary_slot_name slot) written, the slot made sure of on src, and the
// server started: it recovers from the backup's WAL, then streams.
//
// If the stream cannot be unpacked the partial directory is moved to
// "<DataDir>.failed-<timestamp>" and the old one put back, so a failed
// restore leaves the node as it was (stopped). count, when set, is called
// with the bytes unpacked so far.
func (m *Manager) RestoreFrom(ctx context.Context, r io.Reader, src Endpoint, slot, appName string, count func(int64)) (string, error) {
	if err := errors.Join(src.validate(), validSlot(slot), validAppName(appName)); err != nil {
		return "", err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	t0 := time.Now()
	if m.running() {
		if err := m.stop(ctx, StopFast); err != nil {
			m.log.Warn("restore: fast stop failed; stopping immediately", "error", err.Error())
			if err := m.stop(ctx, StopImmediate); err != nil {
				return "", fmt.Errorf("pg: restore: %w", err)
			}
		}
	}
	moved, err := m.moveAside("before-restore")
	if err != nil {
		return "", fmt.Errorf("pg: restore: move %s aside: %w", m.cfg.DataDir, err)
	}
	if moved != "" {
		m.log.Warn("data directory moved aside for restore", "from", m.cfg.DataDir, "to", moved)
	}
	if err := m.prepareDataDir(); err != nil {
		return moved, m.restoreFailed(err, moved)
	}
	if err := m.extractTar(r, m.cfg.DataDir, count); err != nil {
		return moved, m.restoreFailed(err, moved)
	}
	if !fileExists(m.dataPath("PG_VERSION")) {
		return moved, m.restoreFailed(errors.New("pg: restore: the backup holds no PG_VERSION: not a data directory"), moved)
	}
	for _, p := range []string{m.dataPath("backup_manifest"), m.LogFile(), m.dataPath(bootstrapMarker), m.dataPath("postmaster.pid")} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return moved, m.restoreFailed(fmt.Errorf("pg: restore: %w", err), moved)
		}
	}
	if err := m.startAsStandby(ctx, src, slot, appName); err != nil {
		// The directory is a standby now: starting it is the daemon's
		// retry, not a reason to put the old one back.
		return moved, fmt.Errorf("pg: restore: restored, but %w", err)
	}
	m.log.Info("postgresql restored from a backup", "source", src.String(), "old_data_dir", moved,
		"duration", time.Since(t0).Round(time.Millisecond).String())
	return moved, nil
}

// restoreFailed moves a partial restore aside and puts the old data
// directory back.
func (m *Manager) restoreFailed(err error, moved string) error {
	failed, mvErr := m.moveAside("failed")
	if mvErr != nil {
		return fmt.Errorf("%w (and the partial data directory could not be moved aside: %w; the old one is at %s)", err, mvErr, moved)
	}
	if moved != "" {
		if rmErr := os.Remove(m.cfg.DataDir); rmErr != nil && !os.IsNotExist(rmErr) {
			return fmt.Errorf("%w (the old data directory stays at %s: %w)", err, moved, rmErr)
		}
		if rnErr := os.Rename(moved, m.cfg.DataDir); rnErr != nil {
			return fmt.Errorf("%w (the old data directory stays at %s: %w)", err, moved, rnErr)
		}
	}
	if failed != "" {
		return fmt.Errorf("%w (partial restore moved to %s; the old data directory is back in place)", err, failed)
	}
	return fmt.Errorf("%w (the old data directory is back in place)", err)
}
