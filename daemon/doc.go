// Package daemon wires one ramd node together: it owns the local
// PostgreSQL (through pg), the gossip mesh (mesh), the REST API (api) and
// the metrics endpoint (metrics), and runs the loop that checks PostgreSQL,
// publishes this node's state and carries out the decisions of the
// election package. It is the I/O edge: decisions themselves are pure
// functions in election, fed from here.
package daemon
