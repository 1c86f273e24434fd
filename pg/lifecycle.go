package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Start rewrites ramd's configuration files and starts the server with
// pg_ctl start -w. When the server is already running it only reloads the
// rewritten configuration.
func (m *Manager) Start(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.start(ctx)
}

func (m *Manager) start(ctx context.Context) error {
	st, err := m.DataState()
	if err != nil {
		return err
	}
	if st != StateInitialized {
		return fmt.Errorf("pg: start: %s holds no cluster (bootstrap or clone first)", m.cfg.DataDir)
	}
	if err := m.prepareRuntimeDirs(); err != nil {
		return err
	}
	if err := m.writeManagedConf(nil); err != nil {
		return err
	}
	if _, ok := m.Running(); ok {
		return m.reload(ctx)
	}
	m.log.Info("starting postgresql", "data_dir", m.cfg.DataDir, "port", m.cfg.Port, "log_file", m.LogFile())
	m.markLog()
	t0 := time.Now()
	args := []string{"start", "-D", m.cfg.DataDir, "-l", m.LogFile(), "-w", "-t", waitSeconds(ctx, m.cfg.StartTimeout)}
	if _, err := m.run(ctx, "start", "pg_ctl", args); err != nil {
		return fmt.Errorf("%w; server log: %s", err, fileTail(m.LogFile(), 8))
	}
	pid, _ := m.Running()
	m.log.Info("postgresql started", "pid", pid, "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// prepareRuntimeDirs creates the socket directory (0700: the socket is
// trusted) and the log directory, both owned by the run-as user. The
// socket directory may live on a tmpfs emptied by a reboot, so this runs
// on every start.
func (m *Manager) prepareRuntimeDirs() error {
	if err := m.user.mkdirOwned(m.cfg.SocketDir, 0o700); err != nil {
		return err
	}
	return m.user.mkdirOwned(filepath.Dir(m.LogFile()), 0o700)
}

// Stop shuts the server down with pg_ctl stop -m mode and waits for it. It
// is a no-op when the server is not running.
func (m *Manager) Stop(ctx context.Context, mode StopMode) error {
	switch mode {
	case StopSmart, StopFast, StopImmediate:
	default:
		return fmt.Errorf("pg: stop: unknown mode %q (want smart, fast or immediate)", mode)
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.stop(ctx, mode)
}

// stop is Stop with opMu held and mode validated.
// stopPoll is how often stop checks whether the server is gone.
const stopPoll = 5 * time.Millisecond

func (m *Manager) stop(ctx context.Context, mode StopMode) error {
	// A smart shutdown would wait for our own health-check session.
	m.Close()
	if _, ok := m.Running(); !ok {
		return nil
	}
	m.log.Info("stopping postgresql", "data_dir", m.cfg.DataDir, "mode", string(mode))
	t0 := time.Now()
	// pg_ctl stop -w checks ten times a second; a planned switchover
	// waits for this stop, so signal without waiting and poll faster.
	args := []string{"stop", "-D", m.cfg.DataDir, "-m", string(mode), "-W"}
	if _, err := m.run(ctx, "stop", "pg_ctl", args); err != nil {
		if _, ok := m.Running(); !ok {
			// It went away by itself meanwhile: stopped is stopped.
			return nil
		}
		return err
	}
	wait, _ := strconv.Atoi(waitSeconds(ctx, m.cfg.StartTimeout))
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		if _, ok := m.Running(); !ok {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pg: stop (%s): server still running after %d s; server log: %s", mode, wait, fileTail(m.LogFile(), 8))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg: stop (%s): %w", mode, ctx.Err())
		case <-time.After(stopPoll):
		}
	}
	m.log.Info("postgresql stopped", "mode", string(mode), "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// reload makes a running server re-read its configuration (pg_ctl reload
// sends SIGHUP to the postmaster).
func (m *Manager) reload(ctx context.Context) error {
	_, err := m.run(ctx, "reload", "pg_ctl", []string{"reload", "-D", m.cfg.DataDir, "-s"})
	if err == nil {
		m.log.Debug("postgresql configuration reloaded")
	}
	return err
}

// Running reports the postmaster's pid when postmaster.pid names a live
// postmaster of this data directory. A stale file whose pid was reused by
// another process (after a crash or reboot) does not count.
func (m *Manager) Running() (pid int, ok bool) {
	data, err := os.ReadFile(m.dataPath("postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !m.isPostmaster(pid) {
		return 0, false
	}
	return pid, true
}

// isPostmaster: kill(pid, 0) says the process exists; on Linux /proc then
// tells a zombie apart and, through the working directory (the postmaster
// chdirs into its data directory), a reused pid.
func (m *Manager) isPostmaster(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if stat, err := os.ReadFile(proc + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
			if s := stat[i+2]; s == 'Z' || s == 'X' {
				return false
			}
		}
	}
	cwd, err := os.Readlink(proc + "/cwd")
	if err != nil {
		// Not Linux, or not allowed to look: trust kill(0).
		return true
	}
	want, err := filepath.EvalSymlinks(m.cfg.DataDir)
	if err != nil {
		want = m.cfg.DataDir
	}
	return cwd == want
}
