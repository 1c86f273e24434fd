package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"
)

// ConfigOperator serves the configuration endpoints. A Source that does
// not implement it answers them with 501.
type ConfigOperator interface {
	// EffectiveConfig is this node's configuration as it runs (secrets
	// redacted), each key with where its value came from: file,
	// environment, default, derived, or cluster.
	EffectiveConfig() []ConfigEntry
	// ClusterConfig is the cluster-wide overrides, and the PostgreSQL
	// settings on this node that wait for a restart.
	ClusterConfig(ctx context.Context) (ClusterConfigInfo, error)
	// PatchClusterConfig sets (non-nil) and removes (nil) overrides after
	// validating all of them; nothing is applied if one is refused.
	PatchClusterConfig(ctx context.Context, changes map[string]*string) (ClusterConfigInfo, error)
	// Reload re-reads this node's configuration file.
	Reload(ctx context.Context) (ReloadResult, error)
	// RestartPostgres restarts this node's PostgreSQL (fast shutdown,
	// then start); on the primary only with allowPrimary.
	RestartPostgres(ctx context.Context, allowPrimary bool) error
}

// ConfigEntry is one key of a node's effective configuration.
type ConfigEntry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// ClusterConfigInfo is the answer of GET and PATCH /cluster/config.
type ClusterConfigInfo struct {
	// Overrides: "section.key" → value, applied over every node's file.
	Overrides map[string]string `json:"overrides"`
	// PendingRestart lists this node's PostgreSQL settings whose new
	// value waits for a restart (POST /node/restart, node by node).
	PendingRestart []string `json:"pending_restart"`
	// Dynamic lists the keys an override may set.
	Dynamic []string `json:"dynamic_keys"`
}

func (s *server) configOperator(w http.ResponseWriter, r *http.Request) (ConfigOperator, bool) {
	op, ok := s.src.(ConfigOperator)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, "this node cannot serve its configuration")
	}
	return op, ok
}

func (s *server) configRoutes(v1 *mux.Router) {
	s.methods(v1, "/api/v1", "/config", map[string]http.HandlerFunc{http.MethodGet: s.handleConfig})
	s.methods(v1, "/api/v1", "/cluster/config", map[string]http.HandlerFunc{
		http.MethodGet: s.handleClusterConfig, http.MethodPatch: s.handlePatchClusterConfig})
	s.methods(v1, "/api/v1", "/node/restart", map[string]http.HandlerFunc{http.MethodPost: s.handleNodeRestart})
	s.methods(v1, "/api/v1", "/node/reload", map[string]http.HandlerFunc{http.MethodPost: s.handleNodeReload})
}

func (s *server) handleConfig(w http.ResponseWriter, r *http.Request) {
	op, ok := s.configOperator(w, r)
	if !ok {
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, op.EffectiveConfig(), "")
}

func (s *server) handleClusterConfig(w http.ResponseWriter, r *http.Request) {
	op, ok := s.configOperator(w, r)
	if !ok {
		return
	}
	info, err := op.ClusterConfig(r.Context())
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "")
}

func (s *server) handlePatchClusterConfig(w http.ResponseWriter, r *http.Request) {
	op, ok := s.configOperator(w, r)
	if !ok {
		return
	}
	var changes map[string]*string
	if !s.decodeBody(w, r, &changes, false) {
		return
	}
	if len(changes) == 0 {
		s.writeError(w, r, http.StatusBadRequest, `the body must name at least one key, e.g. {"failover.synchronous_mode": "quorum"} (null removes an override)`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	info, err := op.PatchClusterConfig(ctx, changes)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg := fmt.Sprintf("cluster configuration changed: %v", keys)
	if len(info.PendingRestart) > 0 {
		msg += fmt.Sprintf("; on this node %v wait for a PostgreSQL restart (POST /node/restart on each node)", info.PendingRestart)
	}
	s.writeEnvelope(w, r, http.StatusOK, info, msg)
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	// Applied keys took effect at once.
	Applied []string `json:"applied"`
	// RestartRequired keys changed in the file but take effect only when
	// the daemon restarts.
	RestartRequired []string `json:"restart_required"`
}

func (s *server) handleNodeReload(w http.ResponseWriter, r *http.Request) {
	op, ok := s.configOperator(w, r)
	if !ok {
		return
	}
	var empty struct{}
	if !s.decodeBody(w, r, &empty, true) {
		return
	}
	res, err := op.Reload(r.Context())
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	msg := fmt.Sprintf("configuration reloaded: applied %v", res.Applied)
	if len(res.RestartRequired) > 0 {
		msg += fmt.Sprintf("; %v take effect only after a daemon restart", res.RestartRequired)
	}
	s.writeEnvelope(w, r, http.StatusOK, res, msg)
}

type restartBody struct {
	AllowPrimary bool `json:"allow_primary"`
}

func (s *server) handleNodeRestart(w http.ResponseWriter, r *http.Request) {
	op, ok := s.configOperator(w, r)
	if !ok {
		return
	}
	var req restartBody
	if !s.decodeBody(w, r, &req, true) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := op.RestartPostgres(ctx, req.AllowPrimary); err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, nil, "PostgreSQL restarted")
}
