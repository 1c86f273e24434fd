// Package sim is a deterministic cluster simulator for ramd: 3 to 9
// simulated machines (2 to 9 with the pglock backend), each running the
// project's real election.Node (or election.LockNode) and
// detector.Detector, on simulated clocks, over a simulated network, with
// a model of PostgreSQL per machine. A seeded math/rand picks every event;
// there are no goroutines, sleeps or wall-clock reads in a run (RunMany
// only spreads independent runs over workers).
//
// # The model
//
//   - Time (run.go): real time advances in 10ms steps. Everything that
//     happens within a step happens at that instant; invariants are checked
//     at the end of every step.
//   - Clocks (clock.go): every machine has a monotonic clock with its own
//     rate within ±Drift (default: the lease's MaxDrift, the documented
//     bound) and offset, changed by "drift" faults. A Node's logical time
//     is ticked to follow its clock (TickInterval 100ms). Pausing a daemon
//     does not stop its clock: it resumes with a jump, and the glue ticks
//     it up to date before it handles anything received meanwhile.
//   - Network (network.go): every message has a random delay (hence
//     reordering) and may be dropped or duplicated; links are cut one
//     direction at a time (random halves, majority ring, isolating a node,
//     one-way links), and a cut also loses what is in flight. Election
//     messages go through Encode/DecodeMessage on every delivery. Gossip
//     (the mesh) is modelled as periodic NodeState broadcasts over the
//     same links; SWIM's verdict is derived from silence (suspect after
//     0.8s, dead after 1.5s, roughly memberlist as tuned in the field
//     notes); indirect probes are not modelled.
//   - Processes (nodemodel.go, storage.go): a crash kills daemon and
//     PostgreSQL; the restart finds on disk exactly what Readys asked to
//     persist, at the point ready.go says (before messages are sent). A
//     deliberately buggy disk (Config.BuggyStorage) loses the last vote and
//     revocation. A pause freezes the daemon only: PostgreSQL keeps running
//     but confirms no write, since the write gate is served by the daemon.
//   - PostgreSQL (pgmodel.go): role, timeline, WAL as a list of records,
//     streaming from the upstream with a per-node lag, promotion, start and
//     rewind taking simulated time; Demote stops PostgreSQL at once (the
//     fence of the server), Fence closes the write gate. Every record
//     carries its writer token (the token its primary was promoted
//     under), and a node reports its position with the token of its
//     WAL's last record (election.Position.Token); timeline numbers are
//     picked locally, as PostgreSQL does (newest known + 1), so two
//     branches can share one. PostgreSQL is promoted as soon as the
//     Promote action arrives — also when a restarted daemon replays a
//     Promote its cluster has since superseded; the daemon waits for the
//     lease first, so the model is the harsher of the two. A client
//     writes every 20ms to a node running as primary. A write is
//     acknowledged only while the write gate is open (LeaseAcquired until
//     Fence/Demote) and the lease is valid on the daemon's clock at that
//     instant; with Sync, also once NumSync standbys flushed it (the
//     Nodes are bootstrapped with the same setup: ClusterState.Sync is
//     quorum, k = NumSync, every standby).
//   - Daemon glue (glue.go): detector observations from gossip and lease
//     requests, ReportPrimaryFailed on a failed verdict, SetLocal from the
//     PostgreSQL model, bootstrap and membership proposals on the raft
//     leader (the daemon's release of a lease that cannot be renewed is
//     there too, off unless Config.StuckRelease). It is kept apart
//     from the simulator's types so the daemon can share it.
//   - The pglock backend (Config.Election "pglock"; coorddb.go,
//     lockclient.go, dbglue.go): every daemon runs the real
//     election.LockNode instead of Node, and the coordination database is
//     one more machine on the network (address dbID). It holds the
//     cluster's row (token, primary, revoked, released, final, the lease
//     on its own drifting clock, the replicated state), the sessions and
//     the session-level advisory lock, and runs election/pglock's
//     statements (the compare-and-set on the token included) predicate for
//     predicate; TestCoordDBAgreesWithSQL compares the two on a real
//     PostgreSQL. Ready.Ops travel to it as messages over the simulated
//     network (delayed and cut like any other, not dropped: TCP) on the
//     daemon's two connections, one operation at a time each; an answer
//     that does not come within the daemon's OpTimeout is an Unreachable
//     outcome and closes the connection, exactly as daemon/pglock.go
//     classifies it. The server ends a session on the client's FIN, on
//     pg_terminate_backend, on a restart, when the client's host has not
//     answered keepalives for SessionTimeout, and (lock session) when no
//     statement came for SessionTimeout (idle_session_timeout); the lock
//     goes with it. Its faults: dbcut (from some or all nodes, one way
//     too), dbrestart (down for a while; sessions and lock gone, row
//     kept), dbslow (every statement waits, beyond the op timeout: it
//     still commits) and dbkill (terminate a node's lock session);
//     isolate cuts a node off from the database too, halves put it on one
//     side. A committed Bootstrap or Promote is the committed decision of
//     invariant 2, and invariant 4 is also checked at that instant.
//     Config.DBBugs breaks statements on purpose (TestPglockBugsCaught).
//
// # Invariants (invariants.go), checked after every step
//
//  1. two-writers: never two nodes that could acknowledge a write.
//  2. token-order: one node per token across replicas; every Promote
//     action is backed by a committed entry naming that node; tokens never
//     go back on a node; acknowledgements never go back to an older token.
//  3. acked-write-lost (Sync only): the first node to acknowledge under a
//     new token holds every write acknowledged before. Without Sync the
//     loss is only counted (asynchronous replication allows it).
//  4. stale-lease: once a token is applied anywhere, no node holds a
//     lease for an older token by its own clock.
//  5. liveness: a cluster with no cut link, no frozen daemon and a
//     majority of voters up has a writable primary within LivenessBound.
//     With Sync, every standby has restarted by then in the random
//     scenario, so the coordinator's wait for n-k+1 reports ends too.
//     pglock: the coordination database up and prompt, no cut link, no
//     frozen daemon and a healthy replica (or a writable primary) up —
//     with Sync also a majority of the nodes — give a writable primary
//     within LivenessBound (two-node clusters included).
//
// A violation stops the run; PrintTrace shows the seed, the invariant, the
// last 50 events and the schedule.
//
// # Determinism and replay
//
// The fault schedule is a pure function of the seed and the
// configuration, generated before the run (scenario.go), so it can be
// printed, edited and replayed (Config.Schedule, ParseSchedule); clocks,
// PostgreSQL timings, the client and the network draw from their own
// seeded streams. The pglock backend has no other source: its runs replay
// bit for bit without pinning (TestPglockDeterministic). The one source the
// simulator does not own is raft's
// election jitter: etcd raft draws it from crypto/rand. Two runs of one
// seed can therefore elect different leaders and diverge from there; the
// trace records every leadership change. In tests the jitter can be pinned
// with testing/cryptotest.SetGlobalRandom (Go 1.26), which makes a run —
// and the replay of its recorded schedule — identical bit for bit
// (TestDeterministicReplay); this cannot be used outside tests or with
// parallel runs. Controlling campaigns from the outside (a huge
// ElectionTick and explicit Campaign calls) was not used: with CheckQuorum
// and PreVote on, a follower refuses to vote while it believes in a leader,
// and only ForgetLeader, which Node does not expose, clears that.
//
// # What is not modelled
//
// Byte-level WAL and LSN arithmetic, WAL recycling (rewind always finds
// the fork point), crash recovery time beyond a fixed start delay, replay
// lag apart from receive lag, cascading replication, clients that cannot
// reach a node, memberlist's wire protocol and indirect probes, disk
// latency (fsync is instantaneous), CPU time (a daemon handles a message
// in zero time), wall-clock steps, planned switchover, maintenance mode,
// nofailover/priority tags, and bootstrap's initdb decision (node 1 is the
// first primary).
package sim
