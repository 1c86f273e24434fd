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
// Lint exceptions: ramd_cluster_nodes_total, ramd_cluster_healthy_nodes_total
// and ramd_postgresql_connections_total are gauges whose names end in
// "_total", which promlint and `promtool check metrics` flag ("non-counter
// metrics should not have _total suffix"). The names are part of ramd's
// published interface (dashboards and alerts from the original design use
// them), so they are kept; the tests allow exactly these three problems.
// ramd_postgresql_connections{state} is the conventional form of the
// connection count.
//
// PostgreSQL's vital signs (postgres.go) come from a statistics round the
// daemon runs every monitoring.metrics_interval on its own goroutine and
// connection (pg.Vitals); SetVitals stores the result and a scrape reads
// it. ramd_postgresql_queries_total, another original name, counts
// transactions (committed + rolled back): PostgreSQL counts no statements
// without pg_stat_statements.
//
// The election metrics (fencing token, coordinator, maintenance, failovers
// by reason class, failover duration, primary changes, lease remaining) are
// refreshed by UpdateElection, which the election loop calls after every
// tick and applied state; ramd_lease_remaining_seconds itself is computed
// at scrape time from the lease's end. ReasonClass documents how a
// history record's reason maps onto ramd_failovers_total's reason label.
//
// ramd_postgresql_replication_lag_bytes keeps its published meaning (this
// node's own lag, no labels); the per-standby view from the primary's
// pg_stat_replication is ramd_postgresql_standby_lag_bytes{standby}. One
// name cannot carry both label sets in one exporter.
//
// Series that exist at zero from the start: every role, mesh state and
// failover reason class. ramd_api_errors_total, like
// ramd_api_requests_total, gets a series on the first response of each
// route and code (route × code would be hundreds of zero series), and
// ramd_postgresql_standby_lag_bytes has one per connected standby only.
//
// Every method of a nil *Metrics is a no-op, so callers may run without
// metrics without guarding each call.
package metrics
