package pg

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Fence stops the server from accepting writes now: it is
// "pg_ctl stop -m immediate" (SIGQUIT to the postmaster, which kills every
// backend at once without a checkpoint), then waits for the postmaster to
// exit. It is idempotent: fencing a stopped server does nothing.
//
// Why immediate: Fence is for a primary whose lease expired, which must not
// acknowledge one more commit. A fast shutdown first waits for running
// transactions to be cancelled and for the shutdown checkpoint, and the
// walsenders to drain, all of which can commit; a smart one even waits for
// clients to leave. Immediate costs a crash recovery at the next start,
// which Demote and Rewind handle.
//
// Fence signals the postmaster itself rather than through pg_ctl, and takes
// neither the lifecycle lock nor the health-check lock, so that it is not
// delayed by a child process or queued behind a long Start, CloneFrom or
// Check. It does not keep a later Start from starting the server again:
// that is the caller's decision.
func (m *Manager) Fence(ctx context.Context) error {
	pid, ok := m.Running()
	if !ok {
		m.log.Debug("fence: postgresql not running")
		return nil
	}
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("pg: fence: signal postmaster %d: %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	for m.isPostmaster(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg: fence: postmaster %d still alive after SIGQUIT: %w", pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	m.log.Warn("postgresql fenced (immediate stop)", "pid", pid, "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}
