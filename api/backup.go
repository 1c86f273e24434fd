package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// BackupOperator is what the backup endpoints need from the daemon. Any
// node accepts every request; the daemon carries a request naming another
// node (node_id, target_node) over to that node's API. A Source that does
// not implement it answers the endpoints with 501.
type BackupOperator interface {
	// CreateBackup starts a base backup named name in the background and
	// returns its metadata (status "running"). nodeID 0: this node backs
	// up the current primary; otherwise node nodeID backs up its own
	// server and keeps the backup.
	CreateBackup(ctx context.Context, name string, nodeID int) (BackupInfo, error)
	// ListBackups is every reachable node's backups.
	ListBackups(ctx context.Context) BackupList
	// LocalBackups is this node's backups only.
	LocalBackups() []BackupInfo
	// GetBackup finds one backup (nodeID 0: on whichever node holds it).
	GetBackup(ctx context.Context, name string, nodeID int) (BackupInfo, error)
	// DeleteBackup removes a finished backup (nodeID 0: wherever it is,
	// refused when several nodes hold one of that name).
	DeleteBackup(ctx context.Context, name string, nodeID int) (BackupInfo, error)
	// RestoreBackup starts re-creating target's data directory from the
	// backup (held by source, 0: find it) in the background.
	RestoreBackup(ctx context.Context, name string, target, source int) (RestoreInfo, error)
	// RestoreStatus is node's current or last restore.
	RestoreStatus(ctx context.Context, node int) (RestoreInfo, error)
	// SendBackup writes this node's finished backup name as a tar stream.
	// start is called once the backup is found, before anything is
	// written (so that a refusal can still be an error answer).
	SendBackup(ctx context.Context, name string, start func(), w io.Writer) error
}

// BackupInfo describes one backup (the metadata file ramd-backup.json).
type BackupInfo struct {
	Name         string `json:"name"`
	NodeID       int    `json:"node_id"`
	NodeName     string `json:"node_name"`
	SourceNodeID int    `json:"source_node_id"`
	Source       string `json:"source"`
	SourceRole   string `json:"source_role"`
	SystemID     string `json:"system_id"`
	// Status is "running", "done" or "failed" (Error says why).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Progress is 0-100 while running (pg_basebackup's estimate), 100
	// when done.
	Progress  float64 `json:"progress"`
	SizeBytes int64   `json:"size_bytes"`
	StartLSN  string  `json:"start_lsn,omitempty"`
	EndLSN    string  `json:"end_lsn,omitempty"`
	Timeline  uint32  `json:"timeline,omitempty"`
	Created   string  `json:"created"`
	Finished  string  `json:"finished,omitempty"`
	Verified  bool    `json:"verified"`
}

// BackupList is the cluster's backups, and the nodes that did not answer.
type BackupList struct {
	Backups     []BackupInfo      `json:"backups"`
	Unreachable []UnreachableNode `json:"unreachable"`
}

// UnreachableNode is a node whose backups could not be listed.
type UnreachableNode struct {
	NodeID int    `json:"node_id"`
	Error  string `json:"error"`
}

// RestoreInfo describes a restore onto a node.
type RestoreInfo struct {
	BackupName string `json:"backup_name"`
	// HolderNode keeps the backup; TargetNode is restored.
	HolderNode int `json:"holder_node"`
	TargetNode int `json:"target_node"`
	// Status is "running", "done" or "failed"; Phase what it is doing.
	Status string `json:"status"`
	Phase  string `json:"phase"`
	Error  string `json:"error,omitempty"`
	// Progress is 0-100 of the bytes to copy.
	Progress float64 `json:"progress"`
	// MovedAside is where the old data directory went.
	MovedAside string `json:"moved_aside,omitempty"`
	Started    string `json:"started"`
	Finished   string `json:"finished,omitempty"`
}

// backupNameRE: a backup name is a directory name on the node that keeps
// it and appears in URLs, so it is kept to characters that need no
// escaping anywhere.
var backupNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidBackupName returns why name cannot name a backup, or nil.
func ValidBackupName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a backup name is required")
	case strings.Contains(name, "/") || strings.Contains(name, ".."):
		return fmt.Errorf("backup name %q must not contain '/' or '..'", name)
	case name == "create" || name == "list" || name == "restore":
		return fmt.Errorf("backup name %q is reserved (it is an endpoint)", name)
	case !backupNameRE.MatchString(name):
		return fmt.Errorf("backup name %q: 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

func (s *server) backupRoutes(v1 *mux.Router) {
	s.methods(v1, "/api/v1", "/backup/create", map[string]http.HandlerFunc{http.MethodPost: s.handleBackupCreate})
	s.methods(v1, "/api/v1", "/backup/list", map[string]http.HandlerFunc{http.MethodGet: s.handleBackupList})
	s.methods(v1, "/api/v1", "/backup/restore", map[string]http.HandlerFunc{
		http.MethodPost: s.handleBackupRestore, http.MethodGet: s.handleRestoreStatus})
	// {name:.*} so that a name with '/' or '..' reaches the handler and
	// is refused with a 400 rather than a 404 or a redirect.
	s.methods(v1, "/api/v1", "/backup/{name}/download", map[string]http.HandlerFunc{http.MethodGet: s.handleBackupDownload})
	s.methods(v1, "/api/v1", "/backup/{name:.+}", map[string]http.HandlerFunc{
		http.MethodGet: s.handleBackupGet, http.MethodDelete: s.handleBackupDelete})
}

// backupOperator returns the BackupOperator, or answers 501.
func (s *server) backupOperator(w http.ResponseWriter, r *http.Request) (BackupOperator, bool) {
	op, ok := s.src.(BackupOperator)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, "this node cannot manage backups")
	}
	return op, ok
}

// nodeParam reads the optional ?node_id= query parameter (0 when absent)
// and refuses any other parameter.
func (s *server) nodeParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	q := r.URL.Query()
	for k := range q {
		if k != "node_id" {
			s.writeError(w, r, http.StatusBadRequest, "unknown query parameter %q (only node_id)", k)
			return 0, false
		}
	}
	v := q.Get("node_id")
	if v == "" {
		return 0, true
	}
	id, err := strconv.Atoi(v)
	if err != nil || id <= 0 {
		s.writeError(w, r, http.StatusBadRequest, "node_id: %q is not a node id (a positive integer)", v)
		return 0, false
	}
	return id, true
}

// backupName reads and validates the {name} path variable.
func (s *server) backupName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := mux.Vars(r)["name"]
	if err := ValidBackupName(name); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "%v", err)
		return "", false
	}
	return name, true
}

type backupCreateRequest struct {
	BackupName *string `json:"backup_name"`
	NodeID     *int    `json:"node_id"`
}

func (s *server) handleBackupCreate(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	var req backupCreateRequest
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	if req.BackupName == nil {
		s.writeError(w, r, http.StatusBadRequest, `"backup_name" is required`)
		return
	}
	if err := ValidBackupName(*req.BackupName); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "backup_name: %v", err)
		return
	}
	node := 0
	if req.NodeID != nil {
		if *req.NodeID <= 0 {
			s.writeError(w, r, http.StatusBadRequest, "node_id: %d is not a node id (a positive integer)", *req.NodeID)
			return
		}
		node = *req.NodeID
	}
	ctx, cancel := context.WithTimeout(r.Context(), 8*time.Second)
	defer cancel()
	info, err := op.CreateBackup(ctx, *req.BackupName, node)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusAccepted, info, fmt.Sprintf("backup %s started on node %d", info.Name, info.NodeID))
}

func (s *server) handleBackupList(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "scope" {
			s.writeError(w, r, http.StatusBadRequest, "unknown query parameter %q (only scope)", k)
			return
		}
	}
	switch q.Get("scope") {
	case "local":
		l := op.LocalBackups()
		if l == nil {
			l = []BackupInfo{}
		}
		s.writeEnvelope(w, r, http.StatusOK, BackupList{Backups: l, Unreachable: []UnreachableNode{}}, "")
	case "", "cluster":
		l := op.ListBackups(r.Context())
		if l.Backups == nil {
			l.Backups = []BackupInfo{}
		}
		if l.Unreachable == nil {
			l.Unreachable = []UnreachableNode{}
		}
		msg := ""
		if len(l.Unreachable) > 0 {
			msg = fmt.Sprintf("%d node(s) did not answer: their backups are missing from the list", len(l.Unreachable))
		}
		s.writeEnvelope(w, r, http.StatusOK, l, msg)
	default:
		s.writeError(w, r, http.StatusBadRequest, "scope: %q is neither local nor cluster", q.Get("scope"))
	}
}

func (s *server) handleBackupGet(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	name, ok := s.backupName(w, r)
	if !ok {
		return
	}
	node, ok := s.nodeParam(w, r)
	if !ok {
		return
	}
	info, err := op.GetBackup(r.Context(), name, node)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "")
}

func (s *server) handleBackupDelete(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	name, ok := s.backupName(w, r)
	if !ok {
		return
	}
	node, ok := s.nodeParam(w, r)
	if !ok {
		return
	}
	info, err := op.DeleteBackup(r.Context(), name, node)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, fmt.Sprintf("backup %s deleted from node %d", name, info.NodeID))
}

type backupRestoreRequest struct {
	BackupName *string `json:"backup_name"`
	TargetNode *int    `json:"target_node"`
	SourceNode *int    `json:"source_node"`
}

func (s *server) handleBackupRestore(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	var req backupRestoreRequest
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	switch {
	case req.BackupName == nil:
		s.writeError(w, r, http.StatusBadRequest, `"backup_name" is required`)
		return
	case req.TargetNode == nil:
		s.writeError(w, r, http.StatusBadRequest, `"target_node" (the replica to restore) is required`)
		return
	case *req.TargetNode <= 0:
		s.writeError(w, r, http.StatusBadRequest, "target_node: %d is not a node id (a positive integer)", *req.TargetNode)
		return
	case req.SourceNode != nil && *req.SourceNode <= 0:
		s.writeError(w, r, http.StatusBadRequest, "source_node: %d is not a node id (a positive integer)", *req.SourceNode)
		return
	}
	if err := ValidBackupName(*req.BackupName); err != nil {
		s.writeError(w, r, http.StatusBadRequest, "backup_name: %v", err)
		return
	}
	source := 0
	if req.SourceNode != nil {
		source = *req.SourceNode
	}
	ctx, cancel := context.WithTimeout(r.Context(), 8*time.Second)
	defer cancel()
	info, err := op.RestoreBackup(ctx, *req.BackupName, *req.TargetNode, source)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusAccepted, info, fmt.Sprintf("restoring backup %s (from node %d) onto node %d", info.BackupName, info.HolderNode, info.TargetNode))
}

func (s *server) handleRestoreStatus(w http.ResponseWriter, r *http.Request) {
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	node, ok := s.nodeParam(w, r)
	if !ok {
		return
	}
	info, err := op.RestoreStatus(r.Context(), node)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "")
}

// handleBackupDownload streams a backup as tar. It hands out a copy of
// the whole database, so it needs the admin token, not just a read one.
func (s *server) handleBackupDownload(w http.ResponseWriter, r *http.Request) {
	if !s.allow(w, r, accessAdmin, false) {
		return
	}
	op, ok := s.backupOperator(w, r)
	if !ok {
		return
	}
	name, ok := s.backupName(w, r)
	if !ok {
		return
	}
	if len(r.URL.Query()) > 0 {
		s.writeError(w, r, http.StatusBadRequest, "the download takes no query parameters")
		return
	}
	started := false
	err := op.SendBackup(r.Context(), name, func() {
		started = true
		// A backup takes longer than the server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		w.Header().Set("Content-Type", "application/x-tar")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}, w)
	if err == nil {
		return
	}
	if !started {
		s.writeOpError(w, r, err)
		return
	}
	// Mid-stream: only a cut connection tells the receiver.
	s.log.Warn("api: backup download failed", "backup", name, "error", err)
	panic(http.ErrAbortHandler)
}
