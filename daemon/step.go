package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// restartBackoff is the wait after the first failed start; it doubles at
// every failure up to maxRestartBackoff. The first retry comes quickly
// because the usual first failure is a crashed server's processes still
// exiting; a server that keeps failing must not turn the loop into a busy
// loop.
const (
	restartBackoff    = 250 * time.Millisecond
	maxRestartBackoff = 5 * time.Second
)

// errRefused is returned by step when the node must not run: the data
// directory belongs to another cluster.
var errRefused = errors.New("daemon: refusing to start")

// step is one turn of the node's loop: check PostgreSQL, publish the
// result, and carry out what the bootstrap decision asks for.
func (d *Daemon) step(ctx context.Context) error {
	h := d.check(ctx)
	d.observeWriterToken(h)
	d.publish(h)
	d.logRole(h)
	d.metrics.UpdateCluster(d.cfg.Cluster.NodeID, d.mesh.Members(), h)
	if d.cfg.Failover.Fencing == "lease" {
		d.gate.update(h)
	}

	if d.restoring.Load() {
		return nil // a restore is replacing the data directory
	}
	if !d.isResolved() {
		return d.bootstrap(ctx, h)
	}
	d.reconcile(ctx, h)
	return nil
}

func (d *Daemon) check(ctx context.Context) pg.Health {
	d.mu.RLock()
	ds := d.dataState
	d.mu.RUnlock()
	if ds != mesh.DataReady {
		return pg.Health{CheckedAt: time.Now()}
	}
	cctx, cancel := context.WithTimeout(ctx, d.cfg.PostgreSQL.ConnectTimeout.Duration)
	defer cancel()
	return d.pg.Check(cctx)
}

// bootstrap asks election.Bootstrap what to do with a node that is not yet
// serving, and does it.
func (d *Daemon) bootstrap(ctx context.Context, h pg.Health) error {
	d.mu.RLock()
	ds := d.dataState
	d.mu.RUnlock()
	in := election.BootstrapInput{
		Self:          d.cfg.Cluster.NodeID,
		HasData:       ds == mesh.DataReady,
		KnownSystemID: d.ident.SystemID,
		ExpectNodes:   d.cfg.Cluster.ExpectNodes,
		Members:       d.mesh.Members(),
	}
	if in.HasData {
		sysid := h.SystemID
		if sysid == 0 {
			var err error
			if sysid, err = d.pg.SystemID(ctx); err != nil {
				return err
			}
		}
		in.LocalSystemID = sysid
		d.setSystemID(sysid)
	}
	if c := d.cfg.Cluster; c.PrimaryHost != "" {
		in.External = &election.Endpoint{Host: c.PrimaryHost, Port: c.PrimaryPort}
	}
	dec := election.Bootstrap(in)
	d.setPhase(dec.Action.String() + ": " + dec.Reason)

	switch dec.Action {
	case election.Wait:
		return nil
	case election.Refuse:
		return fmt.Errorf("%w: %s (data directory %s)", errRefused, dec.Reason, d.cfg.Cluster.DataDirectory)
	case election.InitPrimary:
		// The bootstrap primary writes before the election records it
		// under token 1: its first WAL carries writer token 0.
		if err := d.writer.set(tokenKnown(0), "initdb"); err != nil {
			d.log.Error("recording the writer token failed; will retry", "error", err)
			return nil
		}
		d.setDataState(mesh.DataInitializing)
		d.publish(h)
		if err := d.pg.InitPrimary(ctx); err != nil {
			d.log.Error("initdb failed; will retry", "error", err)
			d.setDataState(d.currentDataState())
			return nil
		}
	case election.Clone:
		// A clone holds its source's history up to where the copy ended:
		// its position is unknown until it streams the primary's
		// timeline.
		if err := d.writer.set(tokenPending, "cloning"); err != nil {
			d.log.Error("recording the writer token failed; will retry", "error", err)
			return nil
		}
		d.setDataState(mesh.DataInitializing)
		d.publish(h)
		src := pg.Endpoint{Host: dec.Source.Host, Port: dec.Source.Port}
		if err := d.pg.CloneFrom(ctx, src, pg.SlotName(d.cfg.Cluster.NodeName), d.cfg.Cluster.NodeName); err != nil {
			d.log.Error("cloning failed; will retry", "source", fmt.Sprintf("%s:%d", src.Host, src.Port), "error", err)
			d.setDataState(d.currentDataState())
			return nil
		}
	case election.StartExisting:
		// The data directory is ours, but whether it may run as a primary
		// is the election's call: reconcile starts it.
	}
	d.setDataState(mesh.DataReady)
	sysid, err := d.pg.SystemID(ctx)
	if err != nil {
		return err
	}
	d.setSystemID(sysid)
	d.ident = identity{ClusterName: d.cfg.Cluster.ClusterName, NodeID: d.cfg.Cluster.NodeID, SystemID: sysid}
	if err := saveIdentity(d.cfg.Cluster.StateDirectory, d.ident); err != nil {
		return err
	}
	d.mu.Lock()
	d.resolved = true
	d.mu.Unlock()
	d.log.Info("data directory resolved", "action", dec.Action.String(), "reason", dec.Reason, "system_id", sysid)
	h = d.check(ctx)
	d.publish(h)
	d.reconcile(ctx, h)
	return nil
}

// restartPostgres starts a PostgreSQL that stopped or crashed under a
// running daemon, in place: no data lost and no new timeline.
func (d *Daemon) restartPostgres(ctx context.Context) {
	wait := time.Duration(0)
	if d.startFailed > 0 {
		wait = min(restartBackoff<<min(d.startFailed-1, 8), maxRestartBackoff)
	}
	if time.Since(d.lastStart) < wait {
		return
	}
	d.lastStart = time.Now()
	d.log.Warn("PostgreSQL is not running; starting it in place")
	if err := d.pg.Start(ctx); err != nil {
		d.startFailed++
		d.startFailing.Store(true)
		d.log.Error("starting PostgreSQL failed", "attempt", d.startFailed, "error", err)
		return
	}
	d.startFailed = 0
	d.startFailing.Store(false)
}

// currentDataState re-reads the data directory after a failed bootstrap
// action (a failed clone moves its partial directory aside).
func (d *Daemon) currentDataState() mesh.DataState {
	s, err := d.pg.DataState()
	if err != nil {
		d.log.Error("data directory check failed", "error", err)
		return mesh.DataEmpty
	}
	return dataStateOf(s)
}

func (d *Daemon) setDataState(s mesh.DataState) {
	d.mu.Lock()
	d.dataState = s
	d.mu.Unlock()
}

func (d *Daemon) setSystemID(id uint64) {
	d.mu.Lock()
	d.systemID = id
	d.mu.Unlock()
}

func (d *Daemon) setPhase(p string) {
	d.mu.Lock()
	changed := p != d.phase
	d.phase = p
	d.mu.Unlock()
	if changed {
		d.log.Info("bootstrap", "decision", p)
	}
}
