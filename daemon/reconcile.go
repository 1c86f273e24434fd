package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// reconcile brings the local PostgreSQL to the role the election wants.
// It runs in the daemon's loop after every health check; each call does at
// most one slow step and the next tick re-evaluates, so a failed step is
// retried and a newer decision always wins.
func (d *Daemon) reconcile(ctx context.Context, h pg.Health) {
	d.applyParameters(ctx)
	var w desired
	if d.failover != nil {
		w = d.failover.Want()
	}
	switch w.role {
	case wantNothing:
		// No decision yet (the election is forming or catching up). A
		// standby may always run; a primary's data directory starts only
		// under the lease, or in a brand-new cluster whose election has
		// never recorded a primary — otherwise an old primary coming back
		// would be writable before it learns it was replaced.
		if !h.Running && (d.isStandbyDataDir() || d.HoldsLease() || d.failover.neverBootstrapped()) {
			if !d.isStandbyDataDir() && d.HoldsLease() && !d.recordPrimaryToken() {
				return
			}
			d.restartPostgres(ctx)
		}
	case wantFenced:
		// Stay down until the election names a new primary.
	case wantPrimary:
		// PostgreSQL becomes writable only under a valid lease: the lease
		// proves a quorum agrees this token is current, so a stale
		// promotion replayed from the log after a restart does nothing.
		if !d.HoldsLease() {
			return
		}
		// Record the writer token before PostgreSQL writes under it
		// (promoted, started as primary, or the bootstrap primary now
		// named under token 1). The node was chosen as holding every
		// acknowledged commit, so recording it early is safe even if the
		// promotion fails.
		if err := d.writer.set(tokenKnown(w.token), "primary under token "+strconv.FormatUint(w.token, 10)); err != nil {
			d.log.Error("recording the writer token failed; not promoting, will retry", "token", w.token, "error", err)
			return
		}
		switch {
		case !h.Running:
			d.restartPostgres(ctx)
		case h.InRecovery && h.Accepting:
			d.log.Info("promoting PostgreSQL", "token", w.token, "reason", w.reason)
			began := time.Now()
			if err := d.pg.Promote(ctx); err != nil {
				d.log.Error("promotion failed; will retry", "error", err)
				return
			}
			d.log.Info("promoted", "token", w.token, "reason", w.reason, "took", time.Since(began).String())
			// Start the lease gate now rather than at the next health
			// check: commits on the new primary wait for it.
			if d.cfg.Failover.Fencing == "lease" {
				d.gate.update(d.check(ctx))
			}
			d.ensureSlots(ctx)
		}
	case wantReplica:
		d.follow(ctx, h, w)
	}
}

// follow makes this node a streaming replica of w.primaryID: re-point a
// standby, or turn a former primary into one with pg_rewind (re-cloning
// after moving the data directory aside when rewind fails).
func (d *Daemon) follow(ctx context.Context, h pg.Health, w desired) {
	p, ok := d.mesh.Member(w.primaryID)
	if !ok || p.State.PGHost == "" || p.State.Role != mesh.RolePrimary || !p.State.Healthy {
		// Wait until the primary serves. A standby may always run, and
		// it must: a stopped one reports no position, so if this primary
		// never comes back the coordinator would find no candidate and
		// the cluster would stay without a primary (a chaos finding,
		// docs/benchmarks.md "Chaos": bug 3).
		if !h.Running && d.isStandbyDataDir() && !d.rejoinNeeded() {
			d.restartPostgres(ctx)
		}
		return
	}
	src := pg.Endpoint{Host: p.State.PGHost, Port: p.State.PGPort}
	slot, app := pg.SlotName(d.cfg.Cluster.NodeName), d.cfg.Cluster.NodeName
	if st, _, _ := d.failover.Snapshot(); slices.Contains(st.Detached, uint64(d.cfg.Cluster.NodeID)) {
		// Detached by an operator: a standby that does not stream.
		if h.Running && h.InRecovery && (h.ReceiverStatus != "" || h.UpstreamPort != 0) {
			d.log.Info("detaching from the primary (replication stopped by an operator)")
			if err := d.pg.Detach(ctx); err != nil {
				d.log.Error("detaching failed; will retry", "error", err)
			}
			return
		}
		if h.Running && h.InRecovery {
			return
		}
		if !h.Running && d.isStandbyDataDir() {
			// Restart as a standby that does not stream.
			if err := d.pg.Detach(ctx); err != nil {
				d.log.Error("detaching failed; will retry", "error", err)
				return
			}
			d.restartPostgres(ctx)
			return
		}
	}
	if !d.rejoinNeeded() && h.InRecovery && !h.Streaming {
		if line := d.pg.Diverged(); line != "" {
			d.log.Warn("this standby's WAL went past the new primary's fork point; it will be rewound", "primary", w.primaryID, "token", w.token, "server_log", line)
			if err := d.markRejoinNeeded("standby diverged: " + line); err != nil {
				d.log.Error("recording that a rewind is needed failed; will retry", "error", err)
				return
			}
		}
	}
	if !h.Running && d.isStandbyDataDir() && !d.rejoinNeeded() {
		// A standby that refused to start (its minimum recovery point is
		// not on the new timeline) logs why.
		if line := d.pg.Diverged(); line != "" {
			d.log.Warn("this standby cannot start on the new primary's timeline; it will be rewound", "primary", w.primaryID, "token", w.token, "server_log", line)
			if err := d.markRejoinNeeded("standby diverged: " + line); err != nil {
				d.log.Error("recording that a rewind is needed failed; will retry", "error", err)
				return
			}
		}
	}
	after := rejoinedToken(p.State.WriterToken, p.State.WriterTokenKnown, w.token)
	switch {
	case d.rejoinNeeded() && !(h.Running && !h.InRecovery):
		d.rejoin(ctx, src, slot, app, w, after)
	case h.Running && h.InRecovery:
		if h.UpstreamPort == src.Port && h.UpstreamHost == src.Host {
			return
		}
		if h.Streaming && h.UpstreamHost != "" && h.UpstreamPort != 0 && h.UpstreamPort == src.Port {
			return
		}
		d.log.Info("re-pointing replica", "primary", w.primaryID, "upstream", src.String(), "token", w.token, "reason", w.reason)
		if err := d.pg.SetPrimary(ctx, src, slot, app); err != nil {
			d.log.Error("re-pointing failed; will retry", "error", err)
		}
	case h.Running && !h.InRecovery:
		// A former primary: stop it at once, then rewind on the next turn.
		d.log.Warn("this node runs a primary but the cluster has another; fencing before rejoining", "primary", w.primaryID, "token", w.token)
		if err := d.pg.Fence(ctx); err != nil {
			d.log.Error("fencing failed", "error", err)
		}
	default:
		if d.isStandbyDataDir() {
			if err := d.pg.SetPrimary(ctx, src, slot, app); err != nil {
				d.log.Error("writing primary_conninfo failed", "error", err)
				return
			}
			d.restartPostgres(ctx)
			return
		}
		if err := d.markRejoinNeeded("former primary replaced by node " + strconv.Itoa(w.primaryID) + " under token " + strconv.FormatUint(w.token, 10)); err != nil {
			d.log.Error("recording that a rewind is needed failed; will retry", "error", err)
			return
		}
		d.rejoin(ctx, src, slot, app, w, after)
	}
}

// rejoin replaces the local history by a prefix of src's: pg_rewind,
// re-cloning after moving the data directory aside when that fails. The
// rejoin marker (rejoin.go) stays until one of them succeeds, so a failure
// is retried on a later turn instead of starting the directory as a
// standby that cannot follow. after is the writer token of src's history
// (rejoinedToken), recorded once one of them has succeeded.
func (d *Daemon) rejoin(ctx context.Context, src pg.Endpoint, slot, app string, w desired, after tokenState) {
	// A source that just went away fails both at once; the gossiped view
	// may take a while to say so. Pace the retries like restarts.
	if d.rejoinFailed > 0 && time.Since(d.lastRejoin) < min(restartBackoff<<min(d.rejoinFailed-1, 8), maxRestartBackoff) {
		return
	}
	d.lastRejoin = time.Now()
	// pg_rewind (or the re-clone after it) replaces the local history
	// by a prefix of the primary's: the old writer token no longer
	// describes it. Report the position as unknown until it streams
	// the primary's timeline.
	if err := d.writer.set(tokenPending, "rewinding"); err != nil {
		d.log.Error("recording the writer token failed; will retry", "error", err)
		return
	}
	d.log.Info("rejoining as a replica with pg_rewind", "primary", w.primaryID, "source", src.String(), "token", w.token, "reason", w.reason)
	began := time.Now()
	if err := d.pg.Rewind(ctx, src, slot, app); err != nil {
		d.log.Error("pg_rewind failed; re-cloning (the old data directory is moved aside)", "error", err)
		if err := d.pg.Reclone(ctx, src, slot, app); err != nil {
			d.rejoinFailed++
			d.log.Error("re-cloning failed; will retry (rewind first)", "attempt", d.rejoinFailed, "error", err)
			return
		}
		d.rejoined(w, after, "re-cloned", began)
		return
	}
	d.rejoined(w, after, "rewound", began)
}

// rejoined records a successful rewind or re-clone: the writer token of
// the new history first (a crash in between leaves the marker, so the
// rejoin is redone), then the marker goes.
func (d *Daemon) rejoined(w desired, after tokenState, how string, began time.Time) {
	d.rejoinFailed = 0
	if err := d.writer.set(after, how+" from node "+strconv.Itoa(w.primaryID)); err != nil {
		// Still pending: the position is reported once it streams.
		d.log.Error("recording the writer token failed", "error", err)
	}
	d.clearRejoinNeeded()
	d.log.Info(how+" and following", "primary", w.primaryID, "token", w.token, "writer_token", after.String(), "took", time.Since(began).String())
}

// recordPrimaryToken records the token under which this node holds the
// lease as its writer token, before a primary's data directory starts
// without a decision yet (after a restart, before the election replays
// the promotion). It reports false if PostgreSQL must not start yet.
func (d *Daemon) recordPrimaryToken() bool {
	if d.failover == nil {
		return true
	}
	st, _, _ := d.failover.Snapshot()
	if !st.Bootstrapped || st.Primary != uint64(d.cfg.Cluster.NodeID) {
		return true
	}
	if err := d.writer.set(tokenKnown(st.Token), "starting as primary under token "+strconv.FormatUint(st.Token, 10)); err != nil {
		d.log.Error("recording the writer token failed; will retry", "token", st.Token, "error", err)
		return false
	}
	return true
}

// isStandbyDataDir reports whether the stopped data directory will start
// as a standby (standby.signal present).
func (d *Daemon) isStandbyDataDir() bool {
	_, err := os.Stat(filepath.Join(d.pg.DataDir(), "standby.signal"))
	return err == nil
}

// ensureSlots creates the replication slots of every other member on a
// new primary, so replicas that re-point to it find theirs.
func (d *Daemon) ensureSlots(ctx context.Context) {
	var names []string
	for _, m := range d.mesh.Members() {
		if m.State.NodeID != d.cfg.Cluster.NodeID && m.State.Name != "" {
			names = append(names, pg.SlotName(m.State.Name))
		}
	}
	if err := d.pg.EnsureSlots(ctx, names); err != nil {
		d.log.Warn("creating replication slots failed", "error", err)
	}
}

// HoldsLease implements api.LeaseHolder: without an election (a single
// node that never formed a group) there is no lease to check.
func (d *Daemon) HoldsLease() bool {
	if d.failover == nil {
		return true
	}
	return d.failover.HoldsLease()
}

// Election implements api.ElectionSource.
func (d *Daemon) Election() api.ElectionInfo {
	if d.failover == nil {
		return api.ElectionInfo{}
	}
	st, leader, phase := d.failover.Snapshot()
	info := api.ElectionInfo{
		Bootstrapped: st.Bootstrapped, PrimaryNodeID: int(st.Primary), Token: st.Token,
		CoordinatorNodeID: int(leader), Phase: phase, Maintenance: st.Maintenance,
		Backend: d.cfg.Cluster.Election, CoordinationUnreachable: d.failover.Unreachable(),
	}
	for _, id := range st.Detached {
		info.Detached = append(info.Detached, int(id))
	}
	if sw := st.Switchover; sw != nil {
		info.Switchover = &api.PendingSwitchover{From: int(sw.From), To: int(sw.To)}
		if sw.ScheduledAt != 0 {
			info.Switchover.ScheduledAt = time.UnixMilli(sw.ScheduledAt).UTC().Format(time.RFC3339)
		}
	}
	if st.Sync.Enabled() {
		info.SyncMode, info.SyncCount = string(st.Sync.Mode), max(st.Sync.NumSync, 1)
		for _, id := range st.Sync.Members {
			info.SyncStandbys = append(info.SyncStandbys, int(id))
		}
	}
	return info
}
