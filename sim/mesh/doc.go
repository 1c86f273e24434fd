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
//   - stream.go: the in-memory streams (net.Pipe ends that report TCP
//     addresses and can be cut).
//   - timings.go: the memberlist settings per cluster size and why.
//   - node.go: one simulated daemon: memberlist, a delegate publishing a
//     state broadcast and metadata like the daemon's mesh, and the
//     daemon's re-join loop.
//   - record.go: what the memberlist callbacks report, and the sorting of
//     "dead" verdicts into expected ones and false ones.
//   - run.go: the phases of a run; result.go and report.go: the figures.
//   - cli.go: `ramd sim mesh`.
package mesh
