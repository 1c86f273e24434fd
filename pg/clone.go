package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CloneFrom makes this node a standby of src: it creates the physical
// replication slot on src if missing, copies src with pg_basebackup
// (streaming the WAL through the slot), points primary_conninfo at src with
// application_name appName, and starts the server. It refuses a non-empty
// data directory. When pg_basebackup fails, whatever it wrote is moved to
// "<DataDir>.failed-<timestamp>", never deleted.
func (m *Manager) CloneFrom(ctx context.Context, src Endpoint, slot, appName string) error {
	if err := errors.Join(src.validate(), validSlot(slot), validAppName(appName)); err != nil {
		return err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	return m.cloneFrom(ctx, src, slot, appName)
}

// cloneFrom is CloneFrom with opMu held and the arguments validated.
func (m *Manager) cloneFrom(ctx context.Context, src Endpoint, slot, appName string) error {
	st, err := m.DataState()
	if err != nil {
		return err
	}
	if st != StateEmpty {
		return fmt.Errorf("pg: clone: %s already holds a cluster; refusing to overwrite it", m.cfg.DataDir)
	}
	created, err := m.ensureSlot(ctx, src, slot)
	if err != nil {
		return fmt.Errorf("pg: clone: replication slot %s on %s: %w", slot, src, err)
	}
	if err := m.prepareDataDir(); err != nil {
		return err
	}
	if err := m.basebackup(ctx, src, slot, appName); err != nil {
		return m.cloneFailed(ctx, err, src, slot, created)
	}
	if err := m.afterBasebackup(); err != nil {
		return err
	}
	if err := m.writeManagedConf(m.upstreamLines(src, slot, appName)); err != nil {
		return err
	}
	return m.start(ctx)
}

// basebackup runs pg_basebackup. -R makes pg_basebackup itself write
// standby.signal, so even a ramd killed mid-clone cannot leave a copy that
// would start as a second primary; the primary_conninfo it writes to
// postgresql.auto.conf is then replaced by ours (writeManagedConf).
// --no-clean keeps a partial copy for us to move aside.
func (m *Manager) basebackup(ctx context.Context, src Endpoint, slot, appName string) error {
	args := []string{"-h", src.Host, "-p", strconv.Itoa(src.Port), "-U", m.cfg.ReplicationUser,
		"-D", m.cfg.DataDir, "-X", "stream", "-S", slot, "-R", "--checkpoint=fast", "--no-clean", "-w", "-P"}
	env := []string{
		"PGPASSWORD=" + m.cfg.ReplicationPassword,
		"PGAPPNAME=" + appName,
		"PGCONNECT_TIMEOUT=" + strconv.Itoa(m.connectTimeoutSeconds()),
	}
	if m.cfg.SSLMode != "" {
		env = append(env, "PGSSLMODE="+m.cfg.SSLMode)
	}
	m.log.Info("basebackup started", "source", src.String(), "slot", slot, "data_dir", m.cfg.DataDir)
	t0 := time.Now()
	plog := newProgressLog(m.log, "basebackup", "source", src.String())
	if _, err := m.runProgress(ctx, "pg_basebackup", "pg_basebackup", args, plog.report, env...); err != nil {
		return err
	}
	m.log.Info("basebackup finished", "source", src.String(), "duration", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// cloneFailed moves the partial copy aside and drops the slot if this call
// created it (an unused slot would retain WAL on the source forever).
func (m *Manager) cloneFailed(ctx context.Context, err error, src Endpoint, slot string, created bool) error {
	m.log.Warn("basebackup failed", "source", src.String(), "error", err.Error())
	if created {
		m.dropSlot(ctx, src, slot)
	}
	moved, mvErr := m.moveAside("failed")
	switch {
	case mvErr != nil:
		return fmt.Errorf("%w (and the partial data directory could not be moved aside: %w)", err, mvErr)
	case moved != "":
		m.log.Warn("partial data directory moved aside", "from", m.cfg.DataDir, "to", moved)
		return fmt.Errorf("%w (partial data directory moved to %s)", err, moved)
	}
	return err
}

// moveAside renames a non-empty data directory to
// "<DataDir>.<why>-<UTC timestamp>" and returns the new name; an empty or
// missing one stays (it is still a valid target for a retry).
func (m *Manager) moveAside(why string) (string, error) {
	entries, err := os.ReadDir(m.cfg.DataDir)
	if os.IsNotExist(err) || (err == nil && len(entries) == 0) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	base := m.cfg.DataDir + "." + why + "-" + time.Now().UTC().Format("20060102T150405Z")
	target := base
	for i := 1; fileExists(target); i++ {
		target = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(m.cfg.DataDir, target); err != nil {
		return "", err
	}
	return target, nil
}

// afterBasebackup removes what the copy must not inherit from its source:
// the source's server log and a bootstrap marker.
func (m *Manager) afterBasebackup() error {
	for _, p := range []string{m.LogFile(), m.dataPath(bootstrapMarker)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("pg: clone: %w", err)
		}
	}
	if !fileExists(m.dataPath("standby.signal")) {
		return fmt.Errorf("pg: clone: pg_basebackup -R wrote no standby.signal in %s", m.cfg.DataDir)
	}
	return nil
}

// ensureSlot creates the physical slot on src, reserving WAL immediately so
// nothing the copy needs is recycled. It reports whether it created it.
func (m *Manager) ensureSlot(ctx context.Context, src Endpoint, slot string) (bool, error) {
	conn, err := m.connectRemote(ctx, src)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", slot)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" {
		return false, nil // created concurrently
	}
	if err != nil {
		return false, err
	}
	m.log.Info("replication slot created", "source", src.String(), "slot", slot)
	return true, nil
}

// dropSlot is best effort: the clone already failed, this only limits WAL
// retention on the source. The walsender of a killed pg_basebackup may hold
// the slot for a moment, so it retries until ConnectTimeout.
func (m *Manager) dropSlot(ctx context.Context, src Endpoint, slot string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.ConnectTimeout)
	defer cancel()
	conn, err := m.connectRemote(ctx, src)
	if err == nil {
		defer conn.Close(ctx)
		err = dropInactiveSlot(ctx, conn, slot)
	}
	if err != nil {
		m.log.Warn("could not drop replication slot after failed clone", "source", src.String(), "slot", slot, "error", err.Error())
	}
}

func dropInactiveSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	for {
		_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", slot)
		if err != nil {
			return err
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", slot).Scan(&exists); err != nil || !exists {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slot still in use: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SetPrimary points this standby at src: it rewrites primary_conninfo and
// primary_slot_name in postgresql.ramd.conf and, when the server runs,
// reloads it (PostgreSQL 13+ reconnects the WAL receiver without a
// restart). It does not create or remove standby.signal.
func (m *Manager) SetPrimary(ctx context.Context, src Endpoint, slot, appName string) error {
	unlock, err := m.beginFollow("set primary", src, slot, appName)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.writeManagedConf(m.upstreamLines(src, slot, appName)); err != nil {
		return err
	}
	m.log.Info("upstream set", "source", src.String(), "slot", slot)
	if _, ok := m.Running(); ok {
		return m.reload(ctx)
	}
	return nil
}

// Detach stops this standby's streaming for maintenance: primary_conninfo
// and primary_slot_name leave postgresql.ramd.conf and a running server
// reloads, which ends its WAL receiver. The server stays a standby and
// keeps what it has replayed; SetPrimary re-attaches it.
func (m *Manager) Detach(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	st, err := m.DataState()
	if err == nil && st != StateInitialized {
		err = fmt.Errorf("pg: detach: %s holds no cluster", m.cfg.DataDir)
	}
	if err != nil {
		return err
	}
	if err := m.writeManagedConf([]string{}); err != nil {
		return err
	}
	m.log.Info("upstream removed: streaming stopped (detached)")
	if _, ok := m.Running(); ok {
		return m.reload(ctx)
	}
	return nil
}
