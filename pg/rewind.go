package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Rewind makes this server, a former primary whose WAL diverged from src
// (it kept writing after src was promoted, or crashed with WAL src never
// got), a standby of src with pg_rewind, keeping its data directory:
//
//  1. A running server is stopped (fast).
//  2. pg_rewind accepts only a cleanly shut down target. When the control
//     file says otherwise ("in production" after Fence or a crash, "in
//     archive recovery" after a crashed standby), crash recovery runs first
//     in single-user mode (postgres --single ... template1 </dev/null, as
//     Patroni and pg_rewind itself do): it replays the local WAL, writes a
//     shutdown checkpoint and exits, and it never opens a socket, so no
//     client can write to the diverged server in between. Single-user mode
//     refuses standby mode, so standby.signal is removed for it and written
//     back right after. archive_mode=on with archive_command=false keeps
//     its checkpoint from recycling WAL that is not archived yet, as
//     Patroni does; wal_keep_size keeps the WAL pg_rewind needs.
//  3. When src is a primary whose last checkpoint is still on an older
//     timeline than it writes on (promoted, not yet checkpointed), Rewind
//     runs CHECKPOINT on it: otherwise pg_rewind sees the same timeline on
//     both sides and reports "no rewind required".
//  4. pg_rewind --target-pgdata <dir> --source-server '<superuser conninfo>'
//     --progress; the password travels in PGPASSWORD, never on the command
//     line. pg_rewind copies the source's files, configuration and server
//     log included: ramd's files are rewritten afterwards and the local log
//     is kept aside during the run and put back.
//  5. standby.signal and the upstream for src are written (pg_rewind -R is
//     not used: ramd owns primary_conninfo), the slot is made sure of on
//     src, and the server is started as a standby.
//
// Rewind returns once the server runs; it does not wait for it to stream.
// The local history is a prefix of src's from then on, whether or not src
// is still there to stream from, and a caller that waited would hold up
// everything else it does: the daemon's loop waited here for up to a
// minute when src stopped right after the rewind (a chaos finding,
// docs/benchmarks.md "Chaos": finding 4). Callers that need it streaming
// use WaitStreaming; the daemon watches its health checks instead.
//
// Whatever fails, the directory is left with standby.signal, so it never
// comes up as a second primary. When Rewind fails the caller uses Reclone.
func (m *Manager) Rewind(ctx context.Context, src Endpoint, slot, appName string) error {
	if !isExecutable(filepath.Join(m.cfg.BinDir, "pg_rewind")) {
		return fmt.Errorf("pg: rewind: pg_rewind missing in %s: %s", m.cfg.BinDir, installHint)
	}
	unlock, err := m.beginFollow("rewind", src, slot, appName)
	if err != nil {
		return err
	}
	defer unlock()
	t0 := time.Now()
	if m.running() {
		if err := m.stop(ctx, StopFast); err != nil {
			return fmt.Errorf("pg: rewind: %w", err)
		}
	}
	// From here on, a failure must not leave a directory that starts as
	// a primary: pg_rewind removes files the source lacks, standby.signal
	// among them.
	defer func() {
		if err := m.writeStandbySignal(); err != nil {
			m.log.Error("could not write standby.signal after rewind", "error", err.Error())
		}
	}()
	state, err := m.controlState(ctx)
	if err != nil {
		return fmt.Errorf("pg: rewind: %w", err)
	}
	if !cleanlyShutDown(state) {
		if err := m.crashRecovery(ctx, state); err != nil {
			return fmt.Errorf("pg: rewind: %w", err)
		}
	}
	if err := m.checkpointSource(ctx, src); err != nil {
		return fmt.Errorf("pg: rewind: source %s: %w", src, err)
	}
	if err := m.pgRewind(ctx, src); err != nil {
		return err
	}
	if err := os.Remove(m.dataPath(bootstrapMarker)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("pg: rewind: %w", err)
	}
	if err := m.startAsStandby(ctx, src, slot, appName); err != nil {
		return fmt.Errorf("pg: rewind: %w", err)
	}
	m.log.Info("postgresql rewound and started as a standby", "source", src.String(), "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// crashRecovery brings a server that was not shut down cleanly to a clean
// shutdown with a single-user backend (see Rewind).
func (m *Manager) crashRecovery(ctx context.Context, state string) error {
	m.log.Info("running crash recovery in single-user mode before pg_rewind", "cluster_state", state)
	t0 := time.Now()
	for _, f := range []string{standbySignal, recoverySignal} {
		if err := os.Remove(m.dataPath(f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("crash recovery: %w", err)
		}
	}
	args := []string{"--single", "-D", m.cfg.DataDir,
		"-c", "archive_mode=on", "-c", "archive_command=false", "template1"}
	out, err := m.run(ctx, "crash recovery (postgres --single)", "postgres", args)
	// Back to a standby before anything else can fail.
	if werr := m.writeStandbySignal(); werr != nil {
		err = errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	m.log.Debug("single-user output", "output", tail(out, 20))
	after, err := m.controlState(ctx)
	if err != nil {
		return err
	}
	if !cleanlyShutDown(after) {
		return fmt.Errorf("crash recovery: cluster state is %q afterwards; single-user output: %s", after, tail(out, 8))
	}
	m.log.Info("crash recovery done", "cluster_state", after, "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// checkpointSource runs CHECKPOINT on src when it is a primary whose
// control file still records a checkpoint on an older timeline.
func (m *Manager) checkpointSource(ctx context.Context, src Endpoint) error {
	conn, err := m.connectRemote(ctx, src)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		inRecovery       bool
		ckptTLI, currTLI int32
	)
	err = conn.QueryRow(ctx, `SELECT r.rec, (pg_control_checkpoint()).timeline_id,
       CASE WHEN r.rec THEN 0 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END
FROM (SELECT pg_is_in_recovery() AS rec) r`).Scan(&inRecovery, &ckptTLI, &currTLI)
	if err != nil {
		return err
	}
	if inRecovery || ckptTLI >= currTLI {
		return nil
	}
	m.log.Info("source not checkpointed on its timeline yet; running CHECKPOINT there", "source", src.String(),
		"checkpoint_timeline", ckptTLI, "timeline", currTLI)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// pgRewind runs pg_rewind with the local server log kept out of its way.
func (m *Manager) pgRewind(ctx context.Context, src Endpoint) error {
	restoreLog := m.stashLog()
	defer restoreLog()
	ci := []string{
		"host=" + conninfoQuote(src.Host),
		"port=" + strconv.Itoa(src.Port),
		"user=" + conninfoQuote(m.cfg.Superuser),
		"dbname=" + conninfoQuote(m.cfg.Database),
		"application_name=ramd_rewind",
		"connect_timeout=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}
	if m.cfg.SSLMode != "" {
		ci = append(ci, "sslmode="+conninfoQuote(m.cfg.SSLMode))
	}
	args := []string{"--target-pgdata", m.cfg.DataDir, "--source-server", strings.Join(ci, " "), "--progress"}
	m.log.Info("pg_rewind started", "source", src.String(), "data_dir", m.cfg.DataDir)
	t0 := time.Now()
	plog := newProgressLog(m.log, "pg_rewind", "source", src.String())
	out, err := m.runProgress(ctx, "rewind: pg_rewind", "pg_rewind", args, plog.report, "PGPASSWORD="+m.cfg.SuperuserPassword)
	if err != nil {
		if strings.Contains(out, "could not find previous WAL record") {
			m.log.Warn("pg_rewind lacks the WAL since the divergence; reclone needed")
		}
		return err
	}
	m.log.Info("pg_rewind finished", "source", src.String(), "duration", time.Since(t0).Round(time.Millisecond).String(),
		"output", tail(out, 6))
	if strings.Contains(out, "no rewind required") {
		return m.checkNotAhead(ctx, src)
	}
	return nil
}

// checkNotAhead backs up pg_rewind's "no rewind required": pg_rewind only
// compares timelines, so a target that wrote WAL on the source's own
// timeline (started as a primary from a standby's directory without a
// promotion) passes. When the target's last checkpoint lies beyond what the
// source has on that timeline it cannot follow it: ErrDiverged.
func (m *Manager) checkNotAhead(ctx context.Context, src Endpoint) error {
	fields, err := m.controlData(ctx)
	if err != nil {
		return err
	}
	tli, err1 := strconv.ParseUint(fields["Latest checkpoint's TimeLineID"], 10, 32)
	ckpt, err2 := ParseLSN(fields["Latest checkpoint location"])
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("pg: rewind: pg_controldata: %w", err)
	}
	conn, err := m.connectRemote(ctx, src)
	if err != nil {
		return fmt.Errorf("pg: rewind: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		srcTLI int32
		srcPos string
	)
	err = conn.QueryRow(ctx, `SELECT CASE WHEN r.rec THEN coalesce(w.received_tli, (pg_control_checkpoint()).timeline_id)
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       (CASE WHEN r.rec THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_flush_lsn() END)::text
FROM (SELECT pg_is_in_recovery() AS rec) r LEFT JOIN pg_stat_wal_receiver w ON true`).Scan(&srcTLI, &srcPos)
	if err != nil {
		return fmt.Errorf("pg: rewind: source %s: %w", src, err)
	}
	pos, err := ParseLSN(srcPos)
	if err != nil {
		return fmt.Errorf("pg: rewind: source %s: %w", src, err)
	}
	if uint64(srcTLI) == tli && ckpt > pos {
		return fmt.Errorf("pg: rewind: %w: local checkpoint %s is ahead of %s on the same timeline %d (pg_rewind cannot undo that; reclone)",
			ErrDiverged, ckpt, src, tli)
	}
	return nil
}

// stashLog moves the server log next to the data directory for the length
// of pg_rewind (which would replace it with the source's log) and returns
// the function that puts it back. Failures only cost the log: they are
// logged, not returned.
func (m *Manager) stashLog() func() {
	logFile := m.LogFile()
	if !fileExists(logFile) {
		return func() {}
	}
	aside := m.cfg.DataDir + ".rewind-log-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(logFile, aside); err != nil {
		m.log.Warn("could not keep the server log out of pg_rewind's way; it will hold the source's log", "error", err.Error())
		return func() {}
	}
	return func() {
		err := m.user.mkdirOwned(filepath.Dir(logFile), 0o700)
		if err == nil {
			err = os.Rename(aside, logFile)
		}
		if err != nil {
			m.log.Warn("could not put the server log back after pg_rewind", "log", aside, "error", err.Error())
		}
	}
}
