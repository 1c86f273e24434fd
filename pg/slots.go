package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// EnsureSlots creates, on the local server, the physical replication slots
// in names that do not exist yet, reserving WAL at once
// (pg_create_physical_replication_slot(name, true)). A newly promoted
// primary has none of the old primary's slots (slots are not replicated):
// call it with the slots of the other nodes right after Promote. Existing
// slots are left alone.
func (m *Manager) EnsureSlots(ctx context.Context, names []string) error {
	for _, n := range names {
		if err := validSlot(n); err != nil {
			return err
		}
	}
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return fmt.Errorf("pg: slots: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, n := range names {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", n).Scan(&exists); err != nil {
			return fmt.Errorf("pg: slots: %w", err)
		}
		if exists {
			continue
		}
		_, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", n)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" {
			continue // created concurrently
		}
		if err != nil {
			return fmt.Errorf("pg: create replication slot %s: %w", n, err)
		}
		m.log.Info("replication slot created", "slot", n)
	}
	return nil
}

// DropSlot drops the local replication slot name; a missing slot is not an
// error. A slot in use by a connected standby cannot be dropped: the error
// says so (SQLSTATE 55006).
func (m *Manager) DropSlot(ctx context.Context, name string) error {
	if err := validSlot(name); err != nil {
		return err
	}
	conn, err := m.connectLocal(ctx)
	if err != nil {
		return fmt.Errorf("pg: drop slot: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42704" {
		return nil // dropped concurrently
	}
	if err != nil {
		return fmt.Errorf("pg: drop replication slot %s: %w", name, err)
	}
	if n > 0 {
		m.log.Info("replication slot dropped", "slot", name)
	}
	return nil
}
