// Package pg manages the local PostgreSQL server of one ramd node: it
// creates a data directory (initdb or pg_basebackup from a peer), starts and
// stops the server with pg_ctl, owns the part of the configuration ramd
// needs, and checks the server's health over SQL.
//
// # Files ramd owns in the data directory
//
//   - postgresql.ramd.conf: listen address, port, socket directory,
//     replication settings, the upstream (primary_conninfo,
//     primary_slot_name) and [postgresql] parameters. It is included from
//     postgresql.conf with include_if_exists (one line appended once), so
//     ALTER SYSTEM (postgresql.auto.conf) still wins over it, except for the
//     upstream keys, which ramd removes from postgresql.auto.conf because a
//     stale copy there would silently override SetPrimary.
//   - pg_hba.conf: trust only on the unix socket, scram-sha-256 everywhere
//     else. The socket is created with mode 0700 so "trust" means "the
//     run-as user or root".
//   - log/postgresql.log: the server log (logging_collector = off, stderr
//     redirected by pg_ctl -l). ramd does not rotate it.
//
// Both configuration files are rewritten on every Start, so the node's
// configuration is whatever the daemon's config says, not what was left on
// disk.
//
// # Users
//
// PostgreSQL refuses to run as root. When ramd runs as root every
// PostgreSQL binary is started with the credentials of Config.RunAsUser
// (default "postgres") and every file or directory ramd creates for it is
// chowned to that user. Otherwise PostgreSQL runs as ramd's own user.
//
// # Failover primitives
//
// Promote (pg_promote, then CHECKPOINT so that pg_rewind of the old primary
// sees the new timeline), Fence (immediate stop: a primary whose lease
// expired acknowledges nothing more), Demote (a former primary follows the
// new one without rewind; WaitStreaming reports ErrDiverged when it
// cannot), Rewind (pg_rewind, after single-user crash recovery when the
// server was not shut down cleanly) and Reclone (move the directory aside,
// copy the source again), in that order of cost. EnsureSlots creates the
// other nodes' slots on a new primary. Every path that turns a directory
// into a standby writes standby.signal before anything that can fail, so
// a half-done operation never leaves a directory that starts as a primary.
//
// # Safety
//
// ramd never deletes a data directory: a failed clone is moved aside to
// "<data dir>.failed-<timestamp>", one replaced by Reclone to
// "<data dir>.old-<timestamp>", and InitPrimary and CloneFrom refuse a
// directory that is not empty.
package pg
