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
