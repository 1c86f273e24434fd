package pglock

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the coordination schema this ramd
// creates and understands.
const SchemaVersion = 1

// ErrSchemaTooNew: the coordination database was set up by a newer ramd.
var ErrSchemaTooNew = errors.New("election/pglock: coordination schema is newer than this ramd supports")

// schemaLockKey serialises schema creation among daemons starting
// together (CREATE ... IF NOT EXISTS alone races on the catalogs).
const schemaLockKey = 0x72616d645f736368 // "ramd_sch"

var schemaDDL = []string{
	`CREATE SCHEMA IF NOT EXISTS ramd`,
	`CREATE TABLE IF NOT EXISTS ramd.meta (version integer NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ramd.cluster (
		cluster     text PRIMARY KEY,
		token       bigint NOT NULL,
		primary_id  bigint NOT NULL,
		revoked     bigint NOT NULL DEFAULT 0,
		released    boolean NOT NULL DEFAULT false,
		lease_until timestamptz NOT NULL,
		state       jsonb NOT NULL,
		lock_key    bigint NOT NULL,
		final       jsonb,
		updated_at  timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE TABLE IF NOT EXISTS ramd.history (
		cluster     text NOT NULL,
		token       bigint NOT NULL,
		old_primary bigint NOT NULL,
		new_primary bigint NOT NULL,
		reason      text NOT NULL,
		at          timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (cluster, token)
	)`,
}

// ensureSchema creates the schema if it is missing and checks its version.
func ensureSchema(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("election/pglock: schema: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockKey)); err != nil {
		return fmt.Errorf("election/pglock: schema lock: %w", err)
	}
	for _, q := range schemaDDL {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("election/pglock: create schema: %w", err)
		}
	}
	var vp *int
	if err := tx.QueryRow(ctx, `SELECT max(version) FROM ramd.meta`).Scan(&vp); err != nil {
		return fmt.Errorf("election/pglock: read schema version: %w", err)
	}
	switch {
	case vp == nil:
		if _, err := tx.Exec(ctx, `INSERT INTO ramd.meta (version) VALUES ($1)`, SchemaVersion); err != nil {
			return fmt.Errorf("election/pglock: record schema version: %w", err)
		}
	case *vp > SchemaVersion:
		return fmt.Errorf("%w: ramd.meta says version %d, this ramd knows version %d; upgrade ramd", ErrSchemaTooNew, *vp, SchemaVersion)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("election/pglock: schema: %w", err)
	}
	return nil
}
