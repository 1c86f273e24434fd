package daemon

import (
	"context"
	"os"
	"path/filepath"
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
			d.log.Info("promoted", "token", w.token, "took", time.Since(began).String())
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
		return // wait until the new primary serves
	}
	src := pg.Endpoint{Host: p.State.PGHost, Port: p.State.PGPort}
	slot, app := pg.SlotName(d.cfg.Cluster.NodeName), d.cfg.Cluster.NodeName
	switch {
	case h.Running && h.InRecovery:
		if h.UpstreamPort == src.Port && h.UpstreamHost == src.Host {
			return
		}
		if h.Streaming && h.UpstreamHost != "" && h.UpstreamPort != 0 && h.UpstreamPort == src.Port {
			return
		}
		d.log.Info("re-pointing replica", "primary", w.primaryID, "upstream", src.String())
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
		d.log.Info("rejoining as a replica with pg_rewind", "primary", w.primaryID, "source", src.String())
		began := time.Now()
		if err := d.pg.Rewind(ctx, src, slot, app); err != nil {
			d.log.Error("pg_rewind failed; re-cloning (the old data directory is moved aside)", "error", err)
			if err := d.pg.Reclone(ctx, src, slot, app); err != nil {
				d.log.Error("re-cloning failed; will retry", "error", err)
			}
			return
		}
		d.log.Info("rewound and following", "primary", w.primaryID, "took", time.Since(began).String())
	}
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
	}
	if st.Sync.Enabled() {
		info.SyncMode, info.SyncCount = string(st.Sync.Mode), max(st.Sync.NumSync, 1)
		for _, id := range st.Sync.Members {
			info.SyncStandbys = append(info.SyncStandbys, int(id))
		}
	}
	return info
}
