package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

const (
	standbySignal  = "standby.signal"
	recoverySignal = "recovery.signal"
)

// Demote turns this server, a former primary, running or stopped, into a
// standby of src without rewinding it: it stops the server (fast: clients
// are disconnected, the shutdown checkpoint is written and streamed to the
// connected standbys), writes standby.signal and the upstream for src
// (primary_conninfo with application_name appName, primary_slot_name slot)
// into postgresql.ramd.conf, makes sure the slot exists on src (best
// effort: src may not be reachable yet, the WAL receiver keeps retrying)
// and starts the server. A server that already runs as a standby is only
// repointed (reload, no restart).
//
// Demote returns once the server has started; it does not wait for it to
// stream. A server that wrote WAL past the point where src's timeline
// forked off cannot follow src: its WAL receiver fails with "requested
// starting point ... is not in this server's history" or the startup
// process with "new timeline N forked off current database system
// timeline". WaitStreaming reports that as ErrDiverged; the caller then
// uses Rewind (and Reclone when that fails).
//
// A primary that must stop writing at once (lease lost) is fenced first:
// Demote's fast shutdown can still commit what is in flight.
func (m *Manager) Demote(ctx context.Context, src Endpoint, slot, appName string) error {
	unlock, err := m.beginFollow("demote", src, slot, appName)
	if err != nil {
		return err
	}
	defer unlock()
	t0 := time.Now()
	if m.running() {
		if standby, err := m.inRecovery(ctx); err == nil && standby && fileExists(m.dataPath(standbySignal)) {
			m.log.Info("demote: already a standby; repointing it", "source", src.String())
			if err := m.writeManagedConf(m.upstreamLines(src, slot, appName)); err != nil {
				return err
			}
			m.ensureSlotBestEffort(ctx, src, slot)
			// WaitStreaming judges the new upstream only.
			m.markLog()
			return m.reload(ctx)
		}
		if err := m.stop(ctx, StopFast); err != nil {
			return fmt.Errorf("pg: demote: %w", err)
		}
	}
	if err := m.startAsStandby(ctx, src, slot, appName); err != nil {
		return fmt.Errorf("pg: demote: %w", err)
	}
	m.log.Info("postgresql demoted to standby", "source", src.String(), "slot", slot,
		"duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// startAsStandby configures the stopped server as a standby of src and
// starts it. standby.signal is written first, so that whatever fails
// afterwards the directory never starts as a primary.
func (m *Manager) startAsStandby(ctx context.Context, src Endpoint, slot, appName string) error {
	if err := m.writeStandbySignal(); err != nil {
		return err
	}
	if err := m.writeManagedConf(m.upstreamLines(src, slot, appName)); err != nil {
		return err
	}
	m.ensureSlotBestEffort(ctx, src, slot)
	return m.start(ctx)
}

// writeStandbySignal creates standby.signal and removes recovery.signal
// (with both, PostgreSQL runs as a standby anyway; one is less confusing).
func (m *Manager) writeStandbySignal() error {
	if err := m.user.writeFileOwned(m.dataPath(standbySignal), nil, 0o600); err != nil {
		return err
	}
	if err := os.Remove(m.dataPath(recoverySignal)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("pg: remove %s: %w", recoverySignal, err)
	}
	return nil
}

// ensureSlotBestEffort creates this node's slot on src if missing. Without
// it the WAL receiver fails with "replication slot does not exist" until
// src runs EnsureSlots; with it src keeps the WAL this node still needs.
func (m *Manager) ensureSlotBestEffort(ctx context.Context, src Endpoint, slot string) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ConnectTimeout)
	defer cancel()
	if _, err := m.ensureSlot(ctx, src, slot); err != nil {
		m.log.Warn("could not make sure the replication slot exists on the upstream", "source", src.String(), "slot", slot, "error", err.Error())
	}
}

// inRecovery asks the running server whether it is a standby.
func (m *Manager) inRecovery(ctx context.Context) (bool, error) {
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var rec bool
	err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
	return rec, err
}

// beginFollow starts an operation that makes this server follow src: it
// checks the arguments, takes the operations lock (the caller runs the
// returned unlock) and requires a data directory that holds a cluster.
func (m *Manager) beginFollow(op string, src Endpoint, slot, appName string) (func(), error) {
	if err := errors.Join(src.validate(), validSlot(slot), validAppName(appName)); err != nil {
		return nil, err
	}
	m.opMu.Lock()
	st, err := m.DataState()
	if err == nil && st != StateInitialized {
		err = fmt.Errorf("pg: %s: %s holds no cluster", op, m.cfg.DataDir)
	}
	if err != nil {
		m.opMu.Unlock()
		return nil, err
	}
	return m.opMu.Unlock, nil
}
