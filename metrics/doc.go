// Package metrics holds ramd's Prometheus collectors.
//
// Everything is registered on a registry the caller injects (New,
// RegisterRuntime): the package has no init() and touches no global
// registry, so tests and several daemons in one process (the demo, the
// simulator) never collide.
//
// The cluster gauges are refreshed from the daemon's own in-memory view by
// UpdateCluster, typically after every local health check; the scrape itself
// never queries PostgreSQL or the network.
//
// Lint exception: ramd_cluster_nodes_total and ramd_cluster_healthy_nodes_total
// are gauges whose names end in "_total", which promlint flags ("non-counter
// metrics should not have _total suffix"). The names are part of ramd's
// published interface (dashboards and alerts from the original design use
// them), so they are kept; the tests allow exactly these two problems.
//
// Every method of a nil *Metrics is a no-op, so callers may run without
// metrics without guarding each call.
package metrics
