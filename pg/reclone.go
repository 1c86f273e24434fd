package pg

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Reclone replaces this node's data with a fresh copy of src, for when
// Rewind failed (WAL since the divergence gone, a different cluster, a
// damaged directory): it stops the server if it runs (fast, immediate if
// that fails), moves the data directory aside to
// "<DataDir>.old-<UTC timestamp>" (never deleted: it may hold the only copy
// of writes nobody else has; the path is logged and in any error), and
// runs CloneFrom(src, slot, appName), which starts the new standby. When
// src cannot be reached Reclone fails before touching anything.
func (m *Manager) Reclone(ctx context.Context, src Endpoint, slot, appName string) error {
	if err := errors.Join(src.validate(), validSlot(slot), validAppName(appName)); err != nil {
		return err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	t0 := time.Now()
	// Keep the old directory in place when src cannot be copied anyway.
	conn, err := m.connectRemote(ctx, src)
	if err != nil {
		return fmt.Errorf("pg: reclone: source: %w", err)
	}
	_ = conn.Close(context.WithoutCancel(ctx))
	if m.running() {
		if err := m.stop(ctx, StopFast); err != nil {
			m.log.Warn("reclone: fast stop failed; stopping immediately", "error", err.Error())
			if err := m.stop(ctx, StopImmediate); err != nil {
				return fmt.Errorf("pg: reclone: %w", err)
			}
		}
	}
	moved, err := m.moveAside("old")
	if err != nil {
		return fmt.Errorf("pg: reclone: move %s aside: %w", m.cfg.DataDir, err)
	}
	if moved != "" {
		m.log.Warn("old data directory moved aside for reclone", "from", m.cfg.DataDir, "to", moved)
	}
	if err := m.cloneFrom(ctx, src, slot, appName); err != nil {
		if moved != "" {
			return fmt.Errorf("pg: reclone: %w (old data directory kept at %s)", err, moved)
		}
		return fmt.Errorf("pg: reclone: %w", err)
	}
	m.log.Info("postgresql recloned", "source", src.String(), "old_data_dir", moved,
		"duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}
