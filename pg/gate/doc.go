// Package gate is the lease gate: a physical replication client, run by
// the daemon on the primary's own node, that PostgreSQL waits for before
// it acknowledges a commit, and that confirms only while the daemon holds
// its lease.
//
// # Why
//
// A primary whose daemon is dead, frozen (SIGSTOP, a paused VM) or cut off
// must not acknowledge a commit once its lease has expired, because by
// then another node may have been promoted. A frozen daemon cannot act,
// so the fence must not need it to: PostgreSQL itself waits. The primary
// runs with
//
//	synchronous_standby_names = 'FIRST 1 ("ramd_gate")'
//	synchronous_commit = on
//
// (PrimarySettings), and the gate connects with application_name=ramd_gate.
// Every commit then waits until the gate has confirmed its commit record's
// position, and the gate confirms only while Config.Allowed (the lease
// check) says yes:
//
//   - daemon alive, lease held: the gate confirms each piece of WAL as it
//     arrives; commits complete after one loopback round trip;
//   - lease lost or not yet held: the gate keeps reading (so the WAL
//     sender never blocks) and keeps the connection alive with status
//     updates that repeat its old position, but confirms nothing new:
//     commits wait;
//   - daemon frozen: the gate goroutine is frozen with it: nothing is
//     confirmed, commits wait (after wal_sender_timeout the server drops
//     the connection, and they go on waiting);
//   - daemon killed: the connection drops, the server has no synchronous
//     standby, commits wait. That is PostgreSQL's behaviour with a
//     configured but absent synchronous standby, not a timeout: they wait
//     until a gate confirms them or the session is cancelled.
//
// # What a confirmation means
//
// The gate is not a standby. It stores no WAL; it reports write = flush =
// apply = the end of what it received, which PostgreSQL reads as "durable
// on a standby". Here that is fine and intended: the gate's only role is
// to withhold confirmation, and the durability of a commit is the
// primary's own (plus whatever the asynchronous replicas have). So a
// confirmation means "the lease was valid when this commit was
// acknowledged", nothing more. In particular the gate adds no
// durability: losing the primary's disk still loses what the replicas did
// not get.
//
// # What it promises, and what not
//
// Promised: no commit waiting for the synchronous standby is acknowledged
// by PostgreSQL as committed unless Allowed returned true at a moment
// after its commit record was flushed. Allowed is called immediately
// before each status update, after the position to confirm was read, so a
// position learned before the lease was lost is never confirmed after.
// The one remaining window is the instant between that check and the
// socket write: a process frozen exactly there sends one stale
// confirmation when it thaws. The window is microseconds per
// confirmation, so this is improbable, not impossible; the gate logs an
// error when a confirmation went out long after its check, so that it is
// at least not silent. Allowed must also turn false a safety margin
// before the lease really expires (covering scheduling and GC stalls
// between check and write, and clock drift, while the election waits out
// the full lease before promoting), as for any lease.
//
// Its clock matters too: Go's monotonic clock (CLOCK_MONOTONIC) keeps
// running through SIGSTOP but not through a system suspend (CLOCK_BOOTTIME
// does), and a hypervisor may stop a paused VM's guest clock altogether. A
// lease measured on a clock that stood still looks valid after the pause,
// and no local clock can tell; like every lease, this one assumes clocks
// that advance at a bounded rate, so a platform that freezes guest time
// needs something external (fencing the VM, or a hypervisor that steps
// the guest clock on resume before the guest runs).
//
// Not promised (PostgreSQL's documented limits of synchronous replication,
// which apply to the gate as to any synchronous standby):
//
//   - In-doubt writes. A commit's record is written locally before the
//     wait. If the waiting session is cancelled (pg_cancel_backend, a
//     client's cancel request on timeout) or terminated, PostgreSQL stops
//     waiting, warns "canceling wait for synchronous replication ... The
//     transaction has already committed locally, but might not have been
//     replicated to the standby", and the row becomes visible locally. Such a
//     write was never acknowledged as a synchronous commit, and a client
//     must treat that warning (or a dropped connection during COMMIT) as
//     "outcome unknown". Note that statement_timeout does not end the wait
//     (PostgreSQL disarms it before committing); a client-side timeout
//     with a cancel request does.
//   - Visibility while waiting. Other sessions on the fenced primary see
//     the waiting transaction's rows as soon as its record is written, and
//     reads are not fenced at all: transactions that write no WAL commit
//     without waiting. The gate fences acknowledgements of writes, not
//     reads (routing, i.e. the REST /primary check, does that).
//   - Sessions that opt out. synchronous_commit is user-settable: a
//     session (or transaction, or a role or database default set with
//     ALTER ROLE/DATABASE ... SET, which its owner may do) running with
//     synchronous_commit = local or off does not wait for the gate at all,
//     so an isolated primary keeps acknowledging that session's commits.
//     PostgreSQL offers no way to forbid it. Mitigations are partial: the
//     server-wide value is on (PrimarySettings), ramd's configuration
//     should refuse lowering it, and the daemon can audit
//     pg_db_role_setting for role/database overrides; a session-level SET
//     remains invisible. Such commits are acknowledged only to clients that
//     asked not to wait, and they may be lost at failover (pg_rewind
//     discards them), exactly as asynchronous commits may.
//   - Replication privilege. Anyone able to open a replication connection
//     with application_name=ramd_gate can confirm in the gate's place;
//     only superusers and the replication role can.
//
// # Connection, slot, WAL retention
//
// The gate streams physically (replication=true) from the server's
// current flush position (IDENTIFY_SYSTEM), without a replication slot:
// it needs no WAL it was not sent, since it stores nothing and restarts
// from the then current position after a reconnect, so nothing is ever
// retained for it, even while it is withholding or gone. A reconnect
// starts with nothing confirmed (it never re-sends a position an earlier
// connection learned), and first confirms the start position, releasing
// commits that waited through the outage, if and when Allowed says yes.
// Until then PostgreSQL lists the gate as async in pg_stat_replication
// (it ignores standbys without a flush position); commits wait all the
// same. The preferred connection is the unix socket as the superuser,
// which needs "local replication all trust" in pg_hba.conf; the
// replication user over loopback TCP works too. It costs one WAL sender
// (max_wal_senders) and a second read of all WAL, mostly from the page
// cache.
//
// # Latency
//
// New WAL is confirmed by the reading goroutine as soon as it arrives (if
// allowed), not on a timer, so a commit's extra cost is one loopback
// round trip plus the WAL sender's wake-up. StatusInterval (default 10 ms)
// is only how often a withheld position is re-checked; Kick re-checks at
// once (call it when the lease is renewed after a lapse). Measured on a
// 2-core machine over loopback, busy with other work (TestCommitLatency,
// the gate in its own process): a single session's commit took
// 60-330 µs more at the median; pgbench -c 4 ran 5-40% fewer
// transactions per second, the gate process using about 0.13 of a core at
// 1,100 commits/s (mostly system calls and Go scheduler wake-ups). A
// commit that waited while withheld completes 4-8 ms after Allowed turns
// true.
//
// # Synchronous modes (designed, not implemented here)
//
// synchronous_standby_names holds one FIRST or ANY list, so "the gate AND
// any k of the replicas" cannot be said. A list that names the gate and
// replicas (FIRST k+1, ANY k+1) lets commits through without the gate as
// soon as enough replicas are connected: no fence. Two designs keep it:
//
//  1. Every name in the list is a gate: each replica's daemon serves a gate
//     on the primary (ramd_gate_<node>), confirming the minimum of what it
//     received and what its own PostgreSQL has flushed, while it sees the
//     primary's lease as valid; ANY k (ramd_gate_<node>, ...). Costs a
//     second copy of all WAL over the network per replica, and a poll of
//     each replica's flush position.
//  2. The gate stays the only synchronous standby in every mode and waits
//     for the replicas itself: Config.Ceiling returns the position that
//     the quorum (k of the counted standbys) has flushed, read from
//     pg_stat_replication's flush_lsn (what PostgreSQL itself would use),
//     and the gate confirms min(received, Ceiling(received)) while Allowed.
//
// We choose 2: one setting that never changes between modes (no reload
// races when the mode or the member list changes), no extra WAL traffic,
// the fence stays local to the primary, and the quorum rule lives in one
// place, next to election.SyncState, which the election reads to choose a
// replica holding every acknowledged commit. Its cost is latency: the
// daemon learns replica progress by polling pg_stat_replication (a few
// milliseconds, then Kick), where PostgreSQL would be woken directly. The
// replicas stream asynchronously as far as PostgreSQL knows; strict mode
// falls out (fewer than k connected: the ceiling stops, commits wait).
// Computing the ceiling is the daemon's part (daemon/syncrep.go, with the
// rule in election.PlanSync).
package gate
