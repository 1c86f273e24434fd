// Package api serves ramd's REST API and its HAProxy/Patroni-compatible
// health checks.
//
// Every answer is built from memory: the gossiped cluster view and the last
// local PostgreSQL health check, both supplied by a Source. No request waits
// on PostgreSQL or on the network, so the API stays fast and available
// exactly when the database is in trouble, which is when load balancers and
// operators ask most.
//
// # Layout
//
// Everything under /api/v1 answers with one JSON envelope:
//
//	{"success": true, "data": {...}, "message": "", "timestamp": "2024-05-01T12:00:00.000Z"}
//
// success mirrors the HTTP status (false for 4xx and 5xx, including a 503
// health answer that still carries data). Unknown routes get a 404 envelope,
// a wrong method a 405 envelope with an Allow header; bad input gets a 4xx,
// never a 500. GET and HEAD are accepted on every read endpoint.
//
// The load-balancer checks live at the root (/, /primary, /read-write,
// /leader, /replica, /read-only, /health, /liveness, /readiness), answer
// GET, HEAD and OPTIONS, and follow Patroni's semantics so that existing
// HAProxy configurations work unchanged: 200 or 503, a small JSON status
// body on GET, only the status line on HEAD and OPTIONS.
//
// /ui/ serves the read-only cluster page (package ui): static files,
// open without a token because they hold no data; the page reads the data
// through the read endpoints with the user's token.
//
// # Access and limits
//
// Tokens (AuthConfig) decide who may read and who may change; Limits add a
// per-client rate limit, blocked addresses and trusted proxies (applied by
// the outermost middleware, before routing); LimitListener caps concurrent
// connections; every mutating request is audited (Config.AuditLogger,
// Config.AuditFile). docs/security.md has the threat model.
//
// # Decisions where Patroni or the brief was silent
//
//   - A node's role comes from its last local health check: primary when
//     PostgreSQL is running, accepting connections and out of recovery;
//     replica when it is running in recovery; unknown otherwise (a stopped
//     server's last in_recovery flag says nothing about what it is now).
//   - /replica also requires that the server accepts connections: a standby
//     that refuses reads must not get read traffic.
//   - The noloadbalance tag counts as set for true, yes, on or 1 (any case),
//     like Patroni's boolean parsing.
//   - Tag filters (?tag_key=value) apply to /replica, /read-only and /health
//     and are ignored by the primary checks, as in Patroni. Values compare
//     exactly.
//   - A replica's byte lag for ?lag= is the larger of two estimates: the lag
//     it gossips about itself and the gossiped primary LSN minus the local
//     replay LSN. If neither is known the check fails: a bound that cannot
//     be verified is not met. A lag equal to the bound passes.
//   - An unparsable ?lag= (or query string) is a 400, unlike Patroni which
//     silently ignores it: a typo in a load-balancer config should be loud.
//   - last_seen_ms is 0 for the node itself and -1 for a member never heard
//     from.
//   - With several alive members claiming primary, primary_node_id names the
//     one with the highest timeline, then LSN, then the lowest id.
package api
