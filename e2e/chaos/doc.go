// Package chaos is a Jepsen-style harness for ramd: a real cluster (ramd
// daemons and PostgreSQL, each node in its own network namespace, HAProxy
// in front) runs a writer workload while a nemesis injects faults from a
// seeded random schedule — partitions, killed and frozen processes, a
// degraded network, switchovers and restarts — and a checker then reads
// the final table and reports lost acknowledged writes, writes present but
// never acknowledged, split-brain writes (acknowledged by a node after a
// node with a higher fencing token had already acknowledged one), instants
// at which two nodes accepted a probe write, unavailability and failovers.
//
// Run drives one run; Report renders its summary table, text timeline and
// an SVG plot of writes per second with the fault intervals shaded. The
// CI run is TestChaosQuorum (about 3 minutes, fixed seed); long runs go
// through `make chaos` (e2e/cmd/chaos). How to read the output:
// docs/benchmarks.md, "Chaos".
package chaos
