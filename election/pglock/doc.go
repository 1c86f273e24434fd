// Package pglock is the I/O edge of the "pglock" election backend: the
// SQL that keeps a cluster's replicated state in a separate coordination
// PostgreSQL database. It decides nothing. election.LockNode (pure) asks
// for operations; this package runs them and reports the rows the server
// returned, so the decisions stay a deterministic state machine.
//
// # The coordination database
//
// Schema "ramd" (created on first use, idempotently, under a transaction
// advisory lock so that daemons starting together do not race):
//
//   - ramd.meta(version): the schema version. A version newer than this
//     ramd knows is refused with ErrSchemaTooNew.
//   - ramd.cluster: one row per cluster: token, primary_id, revoked,
//     released, lease_until, state (the election.ClusterState as JSON:
//     maintenance, pending switchover, synchronous setup, members...) and
//     lock_key (the coordinator lock's key, so a read can name the
//     session holding it: its application_name is
//     "ramd-coordinator-<node id>").
//   - ramd.history: one row per change of primary.
//
// # Who may change what
//
//   - The coordinator holds a session-level pg_try_advisory_lock on a key
//     derived from the cluster name (LockKey). Revoke and Promote run on
//     that same session and check, inside their transaction, that the
//     session still holds the lock (pg_locks): a coordinator whose session
//     the server dropped cannot act any more.
//   - Promote is a compare-and-set: UPDATE ... WHERE token = $old AND the
//     old lease is over on the server's clock (lease_until < now(), after
//     a revoke) or was released. Two coordinators can never both succeed.
//   - The primary renews with an UPDATE that succeeds only while it is the
//     named primary of the current, unrevoked, unreleased token; the new
//     lease_until is now() + TTL on the server's clock.
//   - Other commands (maintenance, switchover, configuration, members)
//     are read-modify-write transactions (SELECT ... FOR UPDATE) that
//     apply the same pure election.ClusterState.Apply as the quorum
//     backend.
//
// # Bounded lock loss
//
// Every connection sets, in its startup packet, tcp_keepalives_idle,
// tcp_keepalives_interval, tcp_keepalives_count and tcp_user_timeout, so
// that the server notices a vanished client (power loss, partition)
// within Config.SessionTimeout and frees its advisory lock. The lock
// session also sets idle_session_timeout to SessionTimeout: a frozen
// coordinator (SIGSTOP, VM pause) keeps its TCP connection alive (the
// kernel answers keepalives), and only the idle timeout ends its session.
// The coordinator reads the row every renew interval on that session, so
// a live one is never idle that long. The client side sets the same
// keepalives and TCP_USER_TIMEOUT on its socket and a statement_timeout,
// so no operation hangs longer than Config.OpTimeout.
package pglock
