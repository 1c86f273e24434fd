// Package election decides who is primary. Every decision here is a pure
// function or state machine: inputs are the gossiped view and this node's
// own facts, outputs are actions for the daemon to carry out. Nothing in
// this package does I/O, reads the clock or starts goroutines, so the
// simulator can run exactly this code. Time enters as ticks (Node.Tick,
// Config.TickInterval) or explicit logical durations.
//
// # Pieces
//
//   - bootstrap.go: which node of a brand-new cluster runs initdb.
//   - commands.go, state.go: the replicated ClusterState (primary, fencing
//     token, voters, maintenance, pending switchover, history) and the
//     versioned JSON commands that change it.
//   - lease.go: the primary lease arithmetic (Grantor, Holder).
//   - choose.go: which replica to promote.
//   - node.go, ready.go, messages.go, coordinator.go: Node, a wrapper of
//     etcd raft's RawNode with the same Tick/Step/Ready/Advance shape.
//   - backend.go: Backend, what the daemon drives, implemented by Node
//     (election = "quorum") and LockNode.
//   - locknode.go, lockops.go, lockstate.go: LockNode, the pglock
//     backend: the state, the coordinator lock and the lease live in a
//     coordination PostgreSQL database; LockNode asks for operations
//     (Ready.Ops) that election/pglock runs, and decides on their results
//     (see docs/design.md, "The second backend").
//
// # Protocol
//
// The daemons form a raft group (PreVote and CheckQuorum on, at most
// MaxVoters voters, the rest learners). raft only orders commands; the
// raft leader is the coordinator of failovers, not the PostgreSQL primary.
//
// The primary holds a lease: every RenewInterval it sends
// LeaseRequest{token, seq} to every voter. A voter grants only for the
// applied token, to that token's primary, and never for a token it has
// revoked; it records grantUntil = recv + TTL + m. The holder's lease runs
// until sent + TTL − m for the newest request a majority of voters granted.
// Lease arithmetic (lease.go) proves that with clock rates within MaxDrift,
// the holder's lease ends in real time before every grant backing it. The
// daemon acknowledges writes only while the lease is held (ActFence ends
// that), which is what makes the lease a fence and not only a promotion
// gate.
//
// Failover, run by the coordinator when the detector reports the primary
// failed (or the primary released its lease) and maintenance is off:
//
//  1. Send Revoke{token} to the voters. A voter persists "revoked up to
//     token" (Ready.Revoked, before it answers), never grants that token
//     again, and answers Revoked{remaining}: how long its grants for the
//     token still bind it. A released token has no outstanding grants.
//  2. When a majority R has revoked, wait until every reported remaining
//     time has passed (converted to the coordinator's clock with WaitFor).
//  3. Ask every member for its position (PositionRequest/Position) and
//     choose (Choose).
//  4. Propose Promote{token+1, ...}; apply rejects it unless token+1 is
//     exactly next, so two coordinators cannot both promote.
//  5. If the promotion is not applied in time, choose again under the
//     same revoked token.
//
// A release (the primary fenced itself, then told the voters) makes
// voters drop its grants and revoke the token, and lets a coordinator skip
// the wait of step 2. A released token stays released on that node: it
// asks for no lease under it again (until a newer token names it) and
// re-announces the release every RenewInterval, since Release messages can
// be lost and their coordinator can lose leadership.
//
// # Resuming an abandoned failover
//
// A coordinator that loses raft leadership drops its failover (only the
// leader may revoke or propose). If that happens after the revoke quorum,
// the old primary's token can never be renewed, yet the new leader's
// detector may have nothing to report: once the old primary is reachable
// again it gossips "healthy" and keeps sending lease requests. The
// simulator found exactly this (a cluster without a writable primary for
// good). The cure uses the one fact that is already durable, the
// revocations themselves, instead of another replicated record:
//
//   - A voter's refusal says when it is a revocation (LeaseGrant.Revoked),
//     which is forever. A holder refused that way by a majority of voters
//     knows its token is dead, so it releases it (Fence first, then
//     Release to every voter). The new leader receives the release and
//     starts the failover with no lease wait: the holder has fenced.
//   - A leader whose own grantor has revoked (or seen released) the
//     applied token resumes the failover itself. Revocations are only
//     made by coordinators that decided to fail that token over, so
//     finishing that decision is not a new false failover.
//
// Either suffices in most cases: the first needs the old primary to reach
// a quorum of voters (if it does not, it is not healthy from the cluster's
// side either, and a detector fires on the leader), the second needs the
// leader in the revoke quorum (a majority; raft leadership moves among
// voters, so often it is). Recording "revoked" in the raft log was the
// alternative; it cannot close the gap by itself (leadership can move
// between the revoke quorum and the commit of that record) unless the
// intent is committed before revoking, which adds a log round trip to
// every failover. The daemon's own rule (a primary that has not served
// under a valid lease for a while releases) stays as a safety net.
//
// # Synchronous replication
//
// ClusterState.Sync is the synchronous setup the primary runs with
// (synchronous_mode quorum or strict, k = NumSync, the standby set; empty
// = every member but the primary). It is replicated, not per-node
// configuration, because it is a cluster-wide dynamic setting and every
// coordinator must judge a failover by the same rule: Config.Sync only
// gives the value the Bootstrap command carries, SetSync changes it
// later. The coordinator passes it to Choose, which qualifies only
// candidates at or above the highest position reported by n-k+1
// standbys; with fewer reports it keeps collecting, and the reason
// ("waiting: 2 of 4 synchronous standbys reported, need 4 ...") is an
// Event and part of FailoverPhase. It must be at least as strict as what
// the primary enforces: enable it once the primary does, relax it only
// after the primary has.
//
// # Time in commands
//
// PromoteCmd.At (and BootstrapCmd.At, FailoverRecord.At) is the
// proposer's logical time, meaningful only on that node. Time is the
// proposer's wall clock in Unix milliseconds, as the daemon gave it with
// SetWallNow; the package never reads a clock itself.
//
// # Safety: the old primary's lease ends before the new token commits
//
// Let G be the majority that granted the old primary's newest lease-giving
// request and R the majority that revoked its token. Majorities of one
// voter set intersect: some voter v is in both. (The voter set is the
// applied one; raft changes it one node at a time, so majorities of
// consecutive configurations also intersect.)
//
//   - After the revoke quorum, the holder cannot extend its lease: any new
//     request needs a majority of grants, and every majority contains a
//     member of R, which refuses (durably, across restarts).
//   - v granted before it revoked, so its Revoked reply reported a
//     remaining time covering its grant to that request, and the lease
//     arithmetic puts the holder's expiry before that grant's end. The
//     coordinator proposes only after waiting out every reported remaining
//     time, so by the time Promote{token+1} is proposed — let alone
//     committed and acted on — the old lease has expired in real time.
//   - A voter that restarted forgot its grants; it reports "remaining"
//     until TTL + m after its restart (amnesty), which covers any grant
//     it may have given before.
//
// Hence at no real instant do two nodes hold a valid lease, and an old
// primary has stopped acknowledging writes before a new one is promoted.
// The harness (harness_test.go) checks exactly this after every step of
// every scenario in testdata/ and of randomized fault schedules.
//
// What the lease does not cover: writes in flight when the lease ends are
// in doubt (not acknowledged); asynchronous replication can still lose
// acknowledged writes not yet received by the chosen replica (Choose
// prefers the most advanced one, and the synchronous modes bound it).
//
// # Nondeterminism
//
// raft draws its randomized election timeout from its own global source,
// which cannot be injected. A simulator should record who campaigned when
// (the trace) rather than expect bit-for-bit replay; tests that need exact
// output use a long ElectionTick and elect leaders explicitly.
package election
