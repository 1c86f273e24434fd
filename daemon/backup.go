package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// Backups (api.BackupOperator). A backup lives on the node that took it,
// in "<[backup] directory>/<name>/": "data/" is pg_basebackup's plain
// format with its manifest, "ramd-backup.json" the metadata. Any node
// accepts every request: one naming another node is carried over to that
// node's API with the admin token (forward), and the answer passed back.
// A node runs one backup or restore at a time.

const (
	backupMetaFile = "ramd-backup.json"
	backupDataDir  = "data"
	// forwardTimeout bounds a request carried to another node that only
	// starts something (create, restore) or reads (list, get).
	forwardTimeout = 5 * time.Second
	// listTimeout bounds each node's answer to GET /backup/list.
	listTimeout = 2 * time.Second
	// restoreStreamWait bounds how long a restore waits for the restored
	// replica to stream before it reports done anyway.
	restoreStreamWait = 60 * time.Second
)

// backupJobs is the node's backup state: what runs (busy), the running
// backup's live metadata, the last restore, and the downloads in flight.
type backupJobs struct {
	mu      sync.Mutex
	busy    string // "backup <name>" or "restore <name>" while one runs
	current *api.BackupInfo
	restore *api.RestoreInfo
	sending map[string]int
}

func opErr(status int, format string, args ...any) error {
	return &api.OpError{Status: status, Message: fmt.Sprintf(format, args...)}
}

func (d *Daemon) backupRoot() string { return d.cfg.Backup.Directory }

func (d *Daemon) backupPath(name string) string { return filepath.Join(d.backupRoot(), name) }

func nowString() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// CreateBackup implements api.BackupOperator.
func (d *Daemon) CreateBackup(ctx context.Context, name string, nodeID int) (api.BackupInfo, error) {
	if err := api.ValidBackupName(name); err != nil {
		return api.BackupInfo{}, opErr(http.StatusBadRequest, "%v", err)
	}
	self := d.cfg.Cluster.NodeID
	if nodeID != 0 && nodeID != self {
		var info api.BackupInfo
		err := d.forward(ctx, nodeID, http.MethodPost, "/api/v1/backup/create", map[string]any{"backup_name": name, "node_id": nodeID}, &info)
		return info, err
	}
	info := api.BackupInfo{Name: name, NodeID: self, NodeName: d.cfg.Cluster.NodeName, Status: "running", Created: nowString()}
	var src pg.Endpoint
	if nodeID == 0 {
		st, _, _ := d.failover.Snapshot()
		if !st.Bootstrapped || st.Primary == 0 {
			return info, opErr(http.StatusConflict, "the cluster has no primary yet")
		}
		p, ok := d.mesh.Member(int(st.Primary))
		if !ok || p.Liveness != mesh.Alive || !p.State.Healthy || p.State.Role != mesh.RolePrimary {
			return info, opErr(http.StatusPreconditionFailed, "the primary (node %d) is not healthy: name a replica to back up with node_id", st.Primary)
		}
		src = pg.Endpoint{Host: p.State.PGHost, Port: p.State.PGPort}
		info.SourceNodeID, info.SourceRole, info.SystemID = int(st.Primary), string(mesh.RolePrimary), strconv.FormatUint(p.State.SystemID, 10)
	} else {
		h := d.LocalHealth()
		if !h.Running || !h.Accepting || d.restoring.Load() {
			return info, opErr(http.StatusPreconditionFailed, "PostgreSQL on node %d is not running and accepting connections: nothing to back up", self)
		}
		src = pg.Endpoint{Host: d.cfg.PostgreSQL.Host, Port: d.cfg.PostgreSQL.Port}
		info.SourceNodeID, info.SourceRole, info.SystemID = self, string(roleOf(h)), strconv.FormatUint(h.SystemID, 10)
	}
	info.Source = src.String()

	j := &d.backups
	j.mu.Lock()
	if j.busy != "" {
		busy := j.busy
		j.mu.Unlock()
		return info, opErr(http.StatusConflict, "node %d is busy with %s: one backup or restore at a time", self, busy)
	}
	if _, err := os.Lstat(d.backupPath(name)); err == nil {
		j.mu.Unlock()
		return info, opErr(http.StatusConflict, "node %d already holds a backup named %s (delete it first or choose another name)", self, name)
	}
	j.busy = "backup " + name
	cur := info
	j.current = &cur
	j.mu.Unlock()

	fail := func(err error) (api.BackupInfo, error) {
		j.mu.Lock()
		j.busy, j.current = "", nil
		j.mu.Unlock()
		return info, err
	}
	if err := d.pg.PrepareBackupDir(d.backupRoot()); err != nil {
		return fail(fmt.Errorf("daemon: backup directory: %w", err))
	}
	if err := d.pg.PrepareBackupDir(d.backupPath(name)); err != nil {
		return fail(fmt.Errorf("daemon: backup directory: %w", err))
	}
	if err := writeBackupMeta(d.backupPath(name), info); err != nil {
		_ = os.Remove(d.backupPath(name))
		return fail(err)
	}
	d.log.Info("backup started", "backup", name, "source", info.Source, "source_node", info.SourceNodeID)
	go d.runBackup(info, src)
	return info, nil
}

// runBackup takes, verifies and describes the backup, then records the
// outcome in its metadata file.
func (d *Daemon) runBackup(info api.BackupInfo, src pg.Endpoint) {
	j := &d.backups
	dir := d.backupPath(info.Name)
	data := filepath.Join(dir, backupDataDir)
	began := time.Now()
	err := d.pg.BaseBackup(d.bgCtx, src, data, "ramd backup "+info.Name, func(done, total int64) {
		j.mu.Lock()
		if j.current != nil && total > 0 {
			j.current.Progress = min(99, float64(done)*100/float64(total))
		}
		j.mu.Unlock()
	})
	if err == nil {
		if verr := d.pg.VerifyBackup(d.bgCtx, data); verr != nil {
			err = fmt.Errorf("daemon: backup %s does not verify: %w", info.Name, verr)
		} else {
			info.Verified = true
		}
	}
	if err == nil {
		var rng pg.BackupRange
		if rng, err = pg.ReadBackupRange(data); err == nil {
			info.StartLSN, info.EndLSN, info.Timeline = rng.StartLSN.String(), rng.EndLSN.String(), rng.Timeline
		}
	}
	info.SizeBytes, _ = pg.DirSize(data)
	info.Finished = nowString()
	if err != nil {
		info.Status, info.Error = "failed", err.Error()
		d.log.Error("backup failed", "backup", info.Name, "error", err)
	} else {
		info.Status, info.Progress = "done", 100
		d.metrics.SetLastBackup(time.Now())
		d.log.Info("backup done", "backup", info.Name, "size_bytes", info.SizeBytes, "end_lsn", info.EndLSN,
			"took", time.Since(began).Round(time.Millisecond).String())
	}
	if werr := writeBackupMeta(dir, info); werr != nil {
		d.log.Error("recording the backup's outcome failed", "backup", info.Name, "error", werr)
	}
	j.mu.Lock()
	j.busy, j.current = "", nil
	j.mu.Unlock()
}

func writeBackupMeta(dir string, info api.BackupInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("daemon: backup metadata: %w", err)
	}
	tmp := filepath.Join(dir, "."+backupMetaFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("daemon: backup metadata: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, backupMetaFile)); err != nil {
		return fmt.Errorf("daemon: backup metadata: %w", err)
	}
	return nil
}

// readBackupMeta reads a backup's metadata file; a backup still marked
// running that is not this daemon's current job was interrupted.
func (d *Daemon) readBackupMeta(name string) (api.BackupInfo, error) {
	j := &d.backups
	j.mu.Lock()
	if j.current != nil && j.current.Name == name {
		info := *j.current
		j.mu.Unlock()
		return info, nil
	}
	j.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(d.backupPath(name), backupMetaFile))
	if err != nil {
		return api.BackupInfo{}, err
	}
	var info api.BackupInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return api.BackupInfo{}, fmt.Errorf("daemon: backup %s: metadata: %w", name, err)
	}
	if info.Status == "running" {
		info.Status, info.Error = "failed", "interrupted: the daemon stopped while the backup ran"
	}
	info.Name, info.NodeID = name, d.cfg.Cluster.NodeID
	return info, nil
}

// LocalBackups implements api.BackupOperator.
func (d *Daemon) LocalBackups() []api.BackupInfo {
	entries, err := os.ReadDir(d.backupRoot())
	if err != nil {
		return nil
	}
	var out []api.BackupInfo
	for _, e := range entries {
		if !e.IsDir() || api.ValidBackupName(e.Name()) != nil {
			continue
		}
		info, err := d.readBackupMeta(e.Name())
		if err != nil {
			continue // not a backup (no metadata): not ours to list
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b api.BackupInfo) int { return strings.Compare(a.Created, b.Created) })
	return out
}

// ListBackups implements api.BackupOperator: this node's backups and
// every other member's, asked concurrently with a short timeout.
func (d *Daemon) ListBackups(ctx context.Context) api.BackupList {
	out := api.BackupList{Backups: d.LocalBackups()}
	self := d.cfg.Cluster.NodeID
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range d.mesh.Members() {
		id := m.State.NodeID
		if id == self || id == 0 {
			continue
		}
		if m.Liveness != mesh.Alive {
			out.Unreachable = append(out.Unreachable, api.UnreachableNode{NodeID: id, Error: fmt.Sprintf("its daemon is %s", m.Liveness)})
			continue
		}
		wg.Go(func() {
			lctx, cancel := context.WithTimeout(ctx, listTimeout)
			defer cancel()
			var l api.BackupList
			err := d.forward(lctx, id, http.MethodGet, "/api/v1/backup/list?scope=local", nil, &l)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Unreachable = append(out.Unreachable, api.UnreachableNode{NodeID: id, Error: err.Error()})
				return
			}
			out.Backups = append(out.Backups, l.Backups...)
		})
	}
	wg.Wait()
	slices.SortFunc(out.Backups, func(a, b api.BackupInfo) int {
		if c := strings.Compare(a.Created, b.Created); c != 0 {
			return c
		}
		return a.NodeID - b.NodeID
	})
	slices.SortFunc(out.Unreachable, func(a, b api.UnreachableNode) int { return a.NodeID - b.NodeID })
	return out
}

// findBackup resolves which node holds name: nodeID when given (asking
// it when it is another node), else this node if it holds one, else the
// single node in the cluster list that does.
func (d *Daemon) findBackup(ctx context.Context, name string, nodeID int) (api.BackupInfo, error) {
	if err := api.ValidBackupName(name); err != nil {
		return api.BackupInfo{}, opErr(http.StatusBadRequest, "%v", err)
	}
	self := d.cfg.Cluster.NodeID
	if nodeID == 0 || nodeID == self {
		info, err := d.readBackupMeta(name)
		if err == nil {
			return info, nil
		}
		if nodeID == self {
			return info, opErr(http.StatusNotFound, "node %d holds no backup named %s", self, name)
		}
	}
	if nodeID != 0 {
		var info api.BackupInfo
		err := d.forward(ctx, nodeID, http.MethodGet, "/api/v1/backup/"+url.PathEscape(name)+"?node_id="+strconv.Itoa(nodeID), nil, &info)
		return info, err
	}
	l := d.ListBackups(ctx)
	var found []api.BackupInfo
	for _, b := range l.Backups {
		if b.Name == name {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		msg := fmt.Sprintf("no node holds a backup named %s", name)
		if len(l.Unreachable) > 0 {
			msg += fmt.Sprintf(" (%d node(s) did not answer)", len(l.Unreachable))
		}
		return api.BackupInfo{}, opErr(http.StatusNotFound, "%s", msg)
	}
	var ids []string
	for _, b := range found {
		ids = append(ids, strconv.Itoa(b.NodeID))
	}
	return api.BackupInfo{}, opErr(http.StatusConflict, "nodes %s each hold a backup named %s: say which (node_id, or source_node for a restore)", strings.Join(ids, ", "), name)
}

// GetBackup implements api.BackupOperator.
func (d *Daemon) GetBackup(ctx context.Context, name string, nodeID int) (api.BackupInfo, error) {
	return d.findBackup(ctx, name, nodeID)
}

// DeleteBackup implements api.BackupOperator.
func (d *Daemon) DeleteBackup(ctx context.Context, name string, nodeID int) (api.BackupInfo, error) {
	info, err := d.findBackup(ctx, name, nodeID)
	if err != nil {
		return info, err
	}
	self := d.cfg.Cluster.NodeID
	if info.NodeID != self {
		var out api.BackupInfo
		err := d.forward(ctx, info.NodeID, http.MethodDelete, "/api/v1/backup/"+url.PathEscape(name)+"?node_id="+strconv.Itoa(info.NodeID), nil, &out)
		return out, err
	}
	j := &d.backups
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.current != nil && j.current.Name == name:
		return info, opErr(http.StatusConflict, "backup %s is still running on node %d", name, self)
	case j.sending[name] > 0:
		return info, opErr(http.StatusConflict, "backup %s is being sent to a node that restores it", name)
	}
	if err := os.RemoveAll(d.backupPath(name)); err != nil {
		return info, fmt.Errorf("daemon: deleting backup %s: %w", name, err)
	}
	d.log.Info("backup deleted", "backup", name)
	return info, nil
}

// SendBackup implements api.BackupOperator.
func (d *Daemon) SendBackup(ctx context.Context, name string, start func(), w io.Writer) error {
	if err := api.ValidBackupName(name); err != nil {
		return opErr(http.StatusBadRequest, "%v", err)
	}
	info, err := d.readBackupMeta(name)
	if err != nil {
		return opErr(http.StatusNotFound, "node %d holds no backup named %s", d.cfg.Cluster.NodeID, name)
	}
	if info.Status != "done" {
		return opErr(http.StatusConflict, "backup %s is %s, not done", name, info.Status)
	}
	j := &d.backups
	j.mu.Lock()
	if j.sending == nil {
		j.sending = map[string]int{}
	}
	j.sending[name]++
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.sending[name]--
		j.mu.Unlock()
	}()
	start()
	return pg.WriteTar(w, filepath.Join(d.backupPath(name), backupDataDir))
}

// RestoreBackup implements api.BackupOperator.
func (d *Daemon) RestoreBackup(ctx context.Context, name string, target, source int) (api.RestoreInfo, error) {
	self := d.cfg.Cluster.NodeID
	if err := api.ValidBackupName(name); err != nil {
		return api.RestoreInfo{}, opErr(http.StatusBadRequest, "%v", err)
	}
	if target != self {
		body := map[string]any{"backup_name": name, "target_node": target}
		if source != 0 {
			body["source_node"] = source
		}
		var info api.RestoreInfo
		err := d.forward(ctx, target, http.MethodPost, "/api/v1/backup/restore", body, &info)
		return info, err
	}
	st, _, _ := d.failover.Snapshot()
	switch {
	case !st.Bootstrapped || st.Primary == 0:
		return api.RestoreInfo{}, opErr(http.StatusConflict, "the cluster has no primary yet: a restored replica would have nothing to follow")
	case st.Primary == uint64(self):
		return api.RestoreInfo{}, opErr(http.StatusConflict, "node %d is the current primary: restoring over it is refused (switch over first, then restore it as a replica)", self)
	case !d.isResolved():
		return api.RestoreInfo{}, opErr(http.StatusConflict, "node %d has not joined the cluster yet", self)
	}
	if _, err := d.primaryEndpoint(); err != nil {
		return api.RestoreInfo{}, err
	}
	b, err := d.findBackup(ctx, name, source)
	if err != nil {
		return api.RestoreInfo{}, err
	}
	switch {
	case b.Status == "running":
		return api.RestoreInfo{}, opErr(http.StatusConflict, "backup %s on node %d is still running", name, b.NodeID)
	case b.Status != "done" || !b.Verified:
		return api.RestoreInfo{}, opErr(http.StatusPreconditionFailed, "backup %s on node %d is %s and not verified: it cannot be restored", name, b.NodeID, b.Status)
	}
	d.mu.RLock()
	sysid := d.systemID
	d.mu.RUnlock()
	if sysid != 0 && b.SystemID != "" && b.SystemID != "0" && b.SystemID != strconv.FormatUint(sysid, 10) {
		return api.RestoreInfo{}, opErr(http.StatusPreconditionFailed, "backup %s is of another cluster (system id %s, this cluster's is %d)", name, b.SystemID, sysid)
	}
	info := api.RestoreInfo{BackupName: name, HolderNode: b.NodeID, TargetNode: self, Status: "running", Phase: "starting", Started: nowString()}
	j := &d.backups
	j.mu.Lock()
	if j.busy != "" {
		busy := j.busy
		j.mu.Unlock()
		return api.RestoreInfo{}, opErr(http.StatusConflict, "node %d is busy with %s: one backup or restore at a time", self, busy)
	}
	j.busy = "restore " + name
	cur := info
	j.restore = &cur
	j.mu.Unlock()
	// From here the node is not a failover candidate (data_state
	// "initializing" makes it Detached) and its loop leaves PostgreSQL to
	// the restore.
	d.restoring.Store(true)
	d.setDataState(mesh.DataInitializing)
	d.publish(d.LocalHealth())
	d.log.Warn("restore started: this node's data directory will be replaced", "backup", name, "holder", b.NodeID)
	go d.runRestore(info, b.SizeBytes)
	return info, nil
}

// primaryEndpoint is the current primary's PostgreSQL, when it serves.
func (d *Daemon) primaryEndpoint() (pg.Endpoint, error) {
	st, _, _ := d.failover.Snapshot()
	p, ok := d.mesh.Member(int(st.Primary))
	if st.Primary == 0 || !ok || p.Liveness != mesh.Alive || !p.State.Healthy || p.State.Role != mesh.RolePrimary || p.State.PGHost == "" {
		return pg.Endpoint{}, opErr(http.StatusPreconditionFailed, "the primary (node %d) is not healthy: a restored replica needs a primary to follow", st.Primary)
	}
	return pg.Endpoint{Host: p.State.PGHost, Port: p.State.PGPort}, nil
}

func (d *Daemon) setRestore(f func(r *api.RestoreInfo)) {
	d.backups.mu.Lock()
	if d.backups.restore != nil {
		f(d.backups.restore)
	}
	d.backups.mu.Unlock()
}

// runRestore copies the backup into place and waits for the restored
// replica to stream.
func (d *Daemon) runRestore(info api.RestoreInfo, total int64) {
	ctx := d.bgCtx
	began := time.Now()
	err := d.restore(ctx, info, total)
	d.setDataState(d.currentDataState())
	d.restoring.Store(false)
	if err == nil {
		d.setRestore(func(r *api.RestoreInfo) { r.Phase, r.Progress = "waiting for the replica to stream", 100 })
		deadline := time.Now().Add(restoreStreamWait)
		for !d.LocalHealth().Streaming && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	d.setRestore(func(r *api.RestoreInfo) {
		r.Finished = nowString()
		switch {
		case err != nil:
			r.Status, r.Phase, r.Error = "failed", "failed", err.Error()
		case d.LocalHealth().Streaming:
			r.Status, r.Phase = "done", "streaming from the primary"
		default:
			r.Status, r.Phase = "done", "restored, but not streaming yet: see the server log"
		}
	})
	if err != nil {
		d.log.Error("restore failed", "backup", info.BackupName, "error", err)
	} else {
		d.log.Info("restore done", "backup", info.BackupName, "took", time.Since(began).Round(time.Millisecond).String())
	}
	d.backups.mu.Lock()
	d.backups.busy = ""
	d.backups.mu.Unlock()
}

// restoreLogInterval is how often a running restore logs its progress.
const restoreLogInterval = 10 * time.Second

func (d *Daemon) restore(ctx context.Context, info api.RestoreInfo, total int64) error {
	// A restored copy holds the primary's history up to where the backup
	// ended: its position is unknown until it streams (as a clone).
	if err := d.writer.set(tokenPending, "restoring a backup"); err != nil {
		return err
	}
	d.setRestore(func(r *api.RestoreInfo) { r.Phase = "opening the backup" })
	var rd io.ReadCloser
	if info.HolderNode == d.cfg.Cluster.NodeID {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(d.SendBackup(ctx, info.BackupName, func() {}, pw))
		}()
		rd = pr
	} else {
		// A holder that stops sending must not leave this node stopped
		// for good: the download ends after downloadStall without a byte.
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		body, err := d.download(dctx, info.HolderNode, info.BackupName)
		if err != nil {
			return err
		}
		rd = &stallReader{r: body, t: time.AfterFunc(downloadStall, cancel)}
	}
	defer rd.Close()
	src, err := d.primaryEndpoint()
	if err != nil {
		return err
	}
	d.setRestore(func(r *api.RestoreInfo) { r.Phase = "stopping PostgreSQL and copying the backup" })
	// The log shows the copy moving every restoreLogInterval (the API's
	// restore status has the live figure).
	lastLog := time.Now()
	moved, err := d.pg.RestoreFrom(ctx, rd, src, pg.SlotName(d.cfg.Cluster.NodeName), d.cfg.Cluster.NodeName, func(n int64) {
		pct := 0.0
		if total > 0 {
			pct = min(99, float64(n)*100/float64(total))
			d.setRestore(func(r *api.RestoreInfo) { r.Progress = pct })
		}
		if time.Since(lastLog) >= restoreLogInterval {
			lastLog = time.Now()
			d.log.Info("restore progress", "backup", info.BackupName, "done_bytes", n, "total_bytes", total, "percent", float64(int(pct*10))/10)
		}
	})
	d.setRestore(func(r *api.RestoreInfo) { r.MovedAside = moved })
	return err
}

// download opens node's backup name as a tar stream.
func (d *Daemon) download(ctx context.Context, node int, name string) (io.ReadCloser, error) {
	m, err := d.peer(node)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(m.State.APIURL, "/")+"/api/v1/backup/"+url.PathEscape(name)+"/download", nil)
	if err != nil {
		return nil, fmt.Errorf("daemon: download from node %d: %w", node, err)
	}
	req.Header.Set("Authorization", "Bearer "+d.adminToken)
	resp, err := d.peerHTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon: download from node %d: %w", node, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, fmt.Errorf("daemon: download from node %d: %s", node, envelopeMessage(resp))
	}
	return resp.Body, nil
}

// downloadStall bounds a pause in a backup download.
const downloadStall = 60 * time.Second

// stallReader pushes its timer back at every read that returns data.
type stallReader struct {
	r io.ReadCloser
	t *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(downloadStall)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.t.Stop()
	return s.r.Close()
}

// RestoreStatus implements api.BackupOperator.
func (d *Daemon) RestoreStatus(ctx context.Context, node int) (api.RestoreInfo, error) {
	self := d.cfg.Cluster.NodeID
	if node != 0 && node != self {
		var info api.RestoreInfo
		err := d.forward(ctx, node, http.MethodGet, "/api/v1/backup/restore?node_id="+strconv.Itoa(node), nil, &info)
		return info, err
	}
	d.backups.mu.Lock()
	defer d.backups.mu.Unlock()
	if d.backups.restore == nil {
		return api.RestoreInfo{}, opErr(http.StatusNotFound, "no restore has run on node %d since its daemon started", self)
	}
	return *d.backups.restore, nil
}

// peer returns node's member entry when its API can be asked.
func (d *Daemon) peer(node int) (mesh.Member, error) {
	m, ok := d.mesh.Member(node)
	switch {
	case !ok:
		return m, opErr(http.StatusNotFound, "node %d is not a member of the cluster", node)
	case m.Liveness != mesh.Alive:
		return m, opErr(http.StatusServiceUnavailable, "node %d is not reachable: its daemon is %s", node, m.Liveness)
	case m.State.APIURL == "":
		return m, opErr(http.StatusServiceUnavailable, "node %d has not published its API address yet", node)
	}
	return m, nil
}

// forward carries a request over to node's API with the admin token and
// decodes the data of its answer into out. A refusal keeps the node's
// status and message.
func (d *Daemon) forward(ctx context.Context, node int, method, path string, body, out any) error {
	m, err := d.peer(node)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, forwardTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("daemon: forward: %w", err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(m.State.APIURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("daemon: forward to node %d: %w", node, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok := d.adminToken
	if tok == "" {
		tok = d.cfg.API.ReadToken
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := d.peerHTTP.Do(req)
	if err != nil {
		return opErr(http.StatusBadGateway, "node %d (%s) did not answer: %v", node, m.State.APIURL, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	var env struct {
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&env); err != nil {
		return opErr(http.StatusBadGateway, "node %d answered %d with no JSON envelope: %v", node, resp.StatusCode, err)
	}
	if resp.StatusCode >= 400 {
		return opErr(resp.StatusCode, "node %d: %s", node, env.Message)
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return opErr(http.StatusBadGateway, "node %d: unexpected answer: %v", node, err)
		}
	}
	return nil
}

// envelopeMessage is the message of an error answer, or its status.
func envelopeMessage(resp *http.Response) string {
	var env struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&env); err == nil && env.Message != "" {
		return fmt.Sprintf("%s (HTTP %d)", env.Message, resp.StatusCode)
	}
	return resp.Status
}
