// Package mesh is the mesh simulator (`ramd sim mesh`): the real
// hashicorp/memberlist, configured as the daemon configures it, for 10 to
// 1,000 nodes in one process over an in-memory network that injects
// faults. It measures what the daemon's failure detection and gossip do at
// a size no test cluster reaches: how long until every node sees a crash,
// how long a state change takes to reach every node, whether healthy nodes
// are declared dead under packet loss and CPU pauses, and how long two
// halves take to re-merge after a partition heals.
//
// Unlike package sim, runs use the wall clock (memberlist has its own
// goroutines and timers) and are not reproducible; the seed only chooses
// which nodes crash, pause and broadcast, and the loss draws.
//
// # Layout
//
//   - network.go: Network, the fabric: per-link delay, jitter and loss,
//     partitions, crashes, pauses, counters.
//   - transport.go: Transport, one node's memberlist.NodeAwareTransport.
//     A dropped packet still returns success from WriteTo (as UDP does); a
//     dial to a crashed node is refused, a dial across a partition hangs
//     until its timeout; a partition or crash cuts open streams.
//   - filter.go: the duplicate-alive filter (below).
//   - stream.go: the in-memory streams (net.Pipe ends that report TCP
//     addresses and can be cut).
//   - timings.go: the memberlist settings per cluster size and why: the
//     daemon preset (the daemon's settings, probe and gossip intervals
//     scaled) and, from 500 nodes, the large preset (memberlist's
//     retransmit multiplier 2 instead of 4, stream timeout scaled too;
//     with it the run forms the mesh in six waves of equal cost, each
//     ended by an anti-entropy round, skips the partition phase unless
//     asked, and, from the command, collects garbage only at the run's
//     quiet points).
//   - collector.go: the garbage-collector policy (Config.GC): the pacer,
//     or collections only between formation waves and before the
//     measured phases (GCQuiet), since one heap shared by a thousand
//     memberlists is a pause no real daemon has.
//   - node.go: one simulated daemon: memberlist, a delegate publishing a
//     state broadcast and metadata like the daemon's mesh, and the
//     daemon's re-join loop.
//   - record.go: what the memberlist callbacks report, and the sorting of
//     "dead" verdicts into expected ones and false ones.
//   - run.go: the phases of a run: formation (nodes created evenly over
//     a common multiple of the probe and gossip intervals, so their
//     tickers are not in step), settling (the joins' gossip drained),
//     then a crash, a quiet window, a state broadcast, a metadata
//     change, paused nodes and a partition; result.go and report.go: the
//     figures.
//   - suspects.go: the count of suspicions (memberlist reports only
//     verdicts), fed by the filter.
//   - cli.go: `ramd sim mesh`.
//
// # The duplicate-alive filter (a simulation accommodation)
//
// Every node receives each alive message (a join, a refutation, a
// metadata change) up to RetransmitMult·ceil(log10(n+1)) times (16 at
// 1,000 nodes) and memberlist decodes every copy only to ignore all but
// the first. A real node pays for that on its own CPU; n nodes in one
// process on two cores pay for all of them together, which starved the
// acks of large simulated meshes. Unless the run is started with
// NoFilter (--no-filter), the network drops, per receiver, an alive
// message whose byte-identical copy that receiver's memberlist has
// already processed (confirmed by a marker message queued behind it), as
// long as the receiver has not declared the subject dead or left since
// and sees it alive now. Such a message is one memberlist provably
// ignores (its incarnation is not above the one held, and the held one
// cannot be reaped for GossipToTheDeadTime); filter.go gives the
// argument in full and its assumption: a message waits less than that
// (30 s) in a receiver's queues, which the reported longest marker wait
// shows. The filter changes which packets a receiver decodes, never
// what it decides. Alive messages about the receiver itself, suspect and
// dead messages, user messages, pings and acks are never dropped: for
// suspect and dead messages no such argument holds (a repeated dead
// message can kill a node re-added after a reap). Rewritten packets keep
// their label header, compound framing and CRC.
package mesh
