package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotStandby is returned (wrapped) by Promote when the server is not in
// recovery: it is already a primary, so there is nothing to promote.
var ErrNotStandby = errors.New("server is not a standby")

// Promote turns the running standby into a primary with
// SELECT pg_promote(true, <seconds>), which returns once the server is out
// of recovery (and writable) on a new timeline; the wait is what is left of
// ctx's deadline, capped by StartTimeout. Promote then checks
// pg_is_in_recovery() itself, removes the now meaningless upstream from
// postgresql.ramd.conf and runs a CHECKPOINT.
//
// The checkpoint is part of the call because pg_rewind of the old primary
// reads the new primary's control file: until a checkpoint on the new
// timeline is recorded there, pg_rewind sees both servers on the same
// timeline, finds "no rewind required", and the old primary then cannot
// follow (Patroni waits for this checkpoint for the same reason). The server
// accepts writes before the checkpoint starts, so it costs the clients
// nothing; a failed checkpoint is logged, not returned, because the
// promotion itself succeeded (Rewind checkpoints the source again when its
// control file still shows the old timeline).
//
// Promote of a server that is not in recovery fails with ErrNotStandby; of
// a stopped server with an error (start it first).
// promotePoll is how often Promote checks whether promotion finished.
const promotePoll = 5 * time.Millisecond

func (m *Manager) Promote(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if !m.running() {
		return fmt.Errorf("pg: promote: server is not running")
	}
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return fmt.Errorf("pg: promote: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return fmt.Errorf("pg: promote: %w", err)
	}
	if !inRecovery {
		return fmt.Errorf("pg: promote: %w", ErrNotStandby)
	}
	wait, _ := strconv.Atoi(waitSeconds(ctx, m.cfg.StartTimeout))
	m.log.Info("promoting postgresql", "wait_seconds", wait)
	t0 := time.Now()
	// pg_promote(wait => true) checks ten times a second; promotion
	// itself takes a few milliseconds, and every one of them is write
	// outage, so trigger it and poll faster.
	var triggered bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&triggered); err != nil {
		return fmt.Errorf("pg: promote: pg_promote: %w", err)
	}
	if !triggered {
		return fmt.Errorf("pg: promote: pg_promote could not signal the postmaster; server log: %s", fileTail(m.LogFile(), 8))
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return fmt.Errorf("pg: promote: %w", err)
		}
		if !inRecovery {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg: promote: still in recovery after %d s; server log: %s", wait, fileTail(m.LogFile(), 8))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg: promote: %w", ctx.Err())
		case <-time.After(promotePoll):
		}
	}
	promoteTook := time.Since(t0)
	var tli int32
	_ = conn.QueryRow(ctx, currentTimelineSQL).Scan(&tli)
	m.log.Info("postgresql promoted", "timeline", tli, "duration", promoteTook.Round(time.Millisecond).String())

	// The upstream lines are ignored without standby.signal; dropping
	// them keeps a later Start from carrying a stale source along.
	if err := m.writeManagedConf([]string{}); err != nil {
		m.log.Warn("could not remove the upstream after promotion", "error", err.Error())
	} else if err := m.reload(ctx); err != nil {
		m.log.Warn("could not reload after removing the upstream", "error", err.Error())
	}

	t1 := time.Now()
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		m.log.Warn("checkpoint after promotion failed; pg_rewind of the old primary needs one", "error", err.Error())
		return nil
	}
	m.log.Info("checkpoint after promotion done", "duration", time.Since(t1).Round(time.Millisecond).String())
	return nil
}

// currentTimelineSQL is the timeline a primary writes on (the first eight
// hex digits of its current WAL file name).
const currentTimelineSQL = `SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`

// Checkpoint runs CHECKPOINT on the local server (a restartpoint on a
// standby). Promote already does this after promoting.
func (m *Manager) Checkpoint(ctx context.Context) error {
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return fmt.Errorf("pg: checkpoint: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("pg: checkpoint: %w", err)
	}
	m.log.Info("checkpoint done", "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}
