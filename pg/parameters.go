package pg

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SetParameters replaces the extra postgresql.conf settings (Config.
// Parameters) at run time: postgresql.ramd.conf is rewritten and a running
// server reloads it. Settings that take effect only after a restart are
// reported by PendingRestart.
func (m *Manager) SetParameters(ctx context.Context, params map[string]string) error {
	for k, v := range params {
		switch why, reserved := reservedParameters[strings.ToLower(k)]; {
		case !paramKeyRe.MatchString(k):
			return fmt.Errorf("pg: invalid parameter name %q", k)
		case reserved:
			return fmt.Errorf("pg: parameter %s is managed by ramd: %s", k, why)
		case hasControl(v):
			return fmt.Errorf("pg: parameter %q: value must not contain control characters", k)
		}
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if maps.Equal(m.cfg.Parameters, params) {
		return nil
	}
	m.cfg.Parameters = maps.Clone(params)
	st, err := m.DataState()
	if err != nil || st != StateInitialized {
		return err // applied at the next start
	}
	if err := m.writeManagedConf(nil); err != nil {
		return err
	}
	m.log.Info("postgresql parameters changed", "parameters", params)
	if _, ok := m.Running(); ok {
		return m.reload(ctx)
	}
	return nil
}

// PendingRestart lists the settings whose new values wait for a restart
// (pg_settings.pending_restart), on a fresh connection so that it reads
// the configuration as reloaded.
func (m *Manager) PendingRestart(ctx context.Context) ([]string, error) {
	if _, ok := m.Running(); !ok {
		return nil, nil
	}
	// The reload is asynchronous: give the postmaster a moment.
	time.Sleep(100 * time.Millisecond)
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("pg: pending restart: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pg: pending restart: %w", err)
	}
	return names, nil
}
