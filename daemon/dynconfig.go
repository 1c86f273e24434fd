package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ramd/ramd/internal/logging"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/pg"
)

// The cluster-wide configuration overrides (PATCH /cluster/config) live
// in the replicated state; every daemon applies them over its own file.
// The keys that may change are read at each use (configs.DynamicKeys);
// PostgreSQL parameters are written and reloaded.

// effective is the configuration this node runs with now: its own, with
// the applied cluster overrides. Overrides were validated when proposed;
// if they no longer fit this node's file (a file edited since), the
// node's own configuration is used and the problem logged once.
func (d *Daemon) effective() *configs.Config {
	if d.failover == nil {
		return d.cfg
	}
	st, _, _ := d.failover.Snapshot()
	d.dynMu.Lock()
	defer d.dynMu.Unlock()
	if d.dynCfg != nil && maps.Equal(d.dynFor, st.Config) && d.dynGen == d.reloadGen {
		return d.dynCfg
	}
	base := d.cfg
	if d.fileParams != nil {
		// Parameters re-read from the file by a reload.
		base = base.Clone()
		base.PostgreSQL.Parameters = maps.Clone(d.fileParams)
	}
	cfg, err := base.WithOverrides(st.Config)
	if err != nil {
		d.log.Error("the cluster configuration does not fit this node's configuration; using the node's own", "error", err)
		cfg = base
	}
	d.dynCfg, d.dynFor, d.dynGen = cfg, maps.Clone(st.Config), d.reloadGen
	return cfg
}

// applyParameters writes and reloads the PostgreSQL parameters of the
// effective configuration when they changed (called from the daemon loop).
func (d *Daemon) applyParameters(ctx context.Context) {
	params := map[string]string(d.effective().PostgreSQL.Parameters)
	if params == nil {
		params = map[string]string{}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.pg.SetParameters(cctx, params); err != nil {
		d.log.Error("applying the PostgreSQL parameters failed", "error", err)
	}
}

// clusterConfig is what GET /cluster/config shows.
func clusterConfig(st election.ClusterState) map[string]string {
	out := maps.Clone(st.Config)
	if out == nil {
		out = map[string]string{}
	}
	return out
}

// EffectiveConfig implements api.ConfigOperator.
func (d *Daemon) EffectiveConfig() []api.ConfigEntry {
	eff := d.effective()
	var overrides map[string]string
	if d.failover != nil {
		st, _, _ := d.failover.Snapshot()
		overrides = st.Config
	}
	sources := maps.Clone(d.sources)
	if sources == nil {
		sources = map[string]string{}
	}
	for k := range overrides {
		if _, ok := strings.CutPrefix(k, "postgresql.parameters."); ok {
			sources["postgresql.parameters"] = configs.SourceCluster
			continue
		}
		sources[k] = configs.SourceCluster
	}
	var out []api.ConfigEntry
	for _, e := range eff.Entries(sources) {
		out = append(out, api.ConfigEntry{Key: e.Key, Value: e.Value, Source: e.Source})
	}
	return out
}

// ClusterConfig implements api.ConfigOperator.
func (d *Daemon) ClusterConfig(ctx context.Context) (api.ClusterConfigInfo, error) {
	if d.failover == nil {
		return api.ClusterConfigInfo{}, &api.OpError{Status: http.StatusServiceUnavailable, Message: "the election is not running on this node"}
	}
	st, _, _ := d.failover.Snapshot()
	info := api.ClusterConfigInfo{Overrides: clusterConfig(st), Dynamic: append(slices.Clone(configs.DynamicKeys), "postgresql.parameters.<name>")}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	pending, err := d.pg.PendingRestart(cctx)
	if err != nil {
		d.log.Warn("reading pending_restart failed", "error", err)
	}
	info.PendingRestart = pending
	if info.PendingRestart == nil {
		info.PendingRestart = []string{}
	}
	return info, nil
}

// PatchClusterConfig implements api.ConfigOperator: validate every change
// against this node's configuration, propose them together, wait until
// applied here, and report what waits for a restart on this node.
func (d *Daemon) PatchClusterConfig(ctx context.Context, changes map[string]*string) (api.ClusterConfigInfo, error) {
	if d.failover == nil {
		return api.ClusterConfigInfo{}, &api.OpError{Status: http.StatusServiceUnavailable, Message: "the election is not running on this node"}
	}
	st, _, _ := d.failover.Snapshot()
	next := maps.Clone(st.Config)
	if next == nil {
		next = map[string]string{}
	}
	set := map[string]string{}
	var unset []string
	for k, v := range changes {
		if v == nil {
			delete(next, k)
			unset = append(unset, k)
			continue
		}
		next[k] = *v
		set[k] = *v
	}
	if _, err := d.cfg.WithOverrides(next); err != nil {
		return api.ClusterConfigInfo{}, &api.OpError{Status: http.StatusBadRequest, Message: strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	if err := d.propose(ctx, func(n election.Backend) error { return n.SetConfig(set, unset) }); err != nil {
		return api.ClusterConfigInfo{}, err
	}
	for {
		now, _, _ := d.failover.Snapshot()
		if maps.Equal(now.Config, next) || (len(now.Config) == 0 && len(next) == 0) {
			break
		}
		select {
		case <-ctx.Done():
			return api.ClusterConfigInfo{}, &api.OpError{Status: http.StatusServiceUnavailable, Message: "the change was proposed but not applied in time (is a quorum of daemons up?)"}
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.applyParameters(ctx)
	return d.ClusterConfig(ctx)
}

// Reload implements api.ConfigOperator (and SIGHUP): reopen the log file
// (for logrotate, even when the configuration turns out invalid), re-read the
// configuration file and environment, refuse an invalid one without
// changing anything, apply what can change while running (log_level,
// postgresql.parameters) and list the other changed keys as needing a
// daemon restart.
func (d *Daemon) Reload(ctx context.Context) (api.ReloadResult, error) {
	d.reopenLog()
	if d.configPath == "" {
		return api.ReloadResult{}, &api.OpError{Status: http.StatusNotImplemented, Message: "this daemon was not started from a configuration file"}
	}
	next, err := configs.Load(d.configPath, os.Environ())
	if err != nil {
		return api.ReloadResult{}, &api.OpError{Status: http.StatusBadRequest, Message: "the configuration file is not valid, nothing was changed: " + strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	d.dynMu.Lock()
	current := d.cfg
	if d.fileParams != nil {
		current = current.Clone()
		current.PostgreSQL.Parameters = maps.Clone(d.fileParams)
	}
	curLevel := current.Cluster.LogLevel
	if d.level != nil {
		curLevel = strings.ToLower(d.level.Level().String())
	}
	d.dynMu.Unlock()
	current = current.Clone()
	current.Cluster.LogLevel = curLevel
	res := api.ReloadResult{Applied: []string{}, RestartRequired: []string{}}
	for _, key := range configs.ChangedKeys(current, next) {
		switch key {
		case "cluster.log_level":
			if d.level == nil {
				res.RestartRequired = append(res.RestartRequired, key)
				continue
			}
			lvl, err := logging.ParseLevel(next.Cluster.LogLevel)
			if err != nil {
				return res, &api.OpError{Status: http.StatusBadRequest, Message: err.Error()}
			}
			d.level.Set(lvl)
			res.Applied = append(res.Applied, key)
		case "postgresql.parameters":
			d.dynMu.Lock()
			d.fileParams = maps.Clone(map[string]string(next.PostgreSQL.Parameters))
			if d.fileParams == nil {
				d.fileParams = map[string]string{}
			}
			d.reloadGen++
			d.dynMu.Unlock()
			res.Applied = append(res.Applied, key)
		default:
			res.RestartRequired = append(res.RestartRequired, key)
		}
	}
	d.applyParameters(ctx)
	d.log.Info("configuration reloaded", "applied", res.Applied, "restart_required", res.RestartRequired)
	return res, nil
}

// RestartPostgres implements api.ConfigOperator.
func (d *Daemon) RestartPostgres(ctx context.Context, allowPrimary bool) error {
	h := d.LocalHealth()
	if h.Running && !h.InRecovery && !allowPrimary {
		return &api.OpError{Status: http.StatusConflict, Message: "this node is the primary: switch over first, or pass allow_primary (writes stop while it restarts; no failover happens if it is back within primary_start_timeout)"}
	}
	if _, running := d.pg.Running(); !running {
		return &api.OpError{Status: http.StatusConflict, Message: "PostgreSQL is not running on this node"}
	}
	d.log.Info("restarting PostgreSQL at an operator's request", "primary", !h.InRecovery)
	if err := d.pg.Stop(ctx, pg.StopFast); err != nil {
		return &api.OpError{Status: http.StatusInternalServerError, Message: fmt.Sprintf("stopping PostgreSQL: %v", err)}
	}
	// The daemon's loop starts it again (a primary only under its lease);
	// wait for it to accept connections.
	for {
		if h := d.check(ctx); h.Running && h.Accepting {
			return nil
		}
		select {
		case <-ctx.Done():
			return &api.OpError{Status: http.StatusGatewayTimeout, Message: "PostgreSQL stopped, but it was not accepting connections again in time; the daemon keeps trying"}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reopenLog reopens [logging] file at its path, so that after logrotate
// renamed it new lines go to a new file. The first line in the new file
// says so; a failure is logged into the old one, which stays in use.
func (d *Daemon) reopenLog() {
	if d.logFile == nil {
		return
	}
	if err := d.logFile.Reopen(); err != nil {
		d.log.Error("reopening the log file failed; still writing to the previous one", "path", d.logFile.Path(), "error", err)
		return
	}
	d.log.Info("log file reopened", "path", d.logFile.Path())
}
