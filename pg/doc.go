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
// # Safety
//
// ramd never deletes a data directory: a failed clone is moved aside to
// "<data dir>.failed-<timestamp>", and InitPrimary and CloneFrom refuse a
// directory that is not empty.
package pg
