// Package detector decides, from one daemon's point of view, whether the
// current primary has failed. It is pure: the caller feeds Observations
// (the gossiped member, the SWIM verdict, when the primary last renewed its
// lease with this node, and the logical clock), and the Detector returns a
// Verdict. Nothing here reads a clock, sleeps or does I/O.
//
// Evidence, strongest first:
//
//   - Lease renewals: a primary that sent this node a lease request within
//     LeaseSilence is alive at the daemon level, whatever SWIM says (an
//     asymmetric partition can make SWIM report a live node dead).
//   - SWIM liveness: dead or left (or gone from the member list) means the
//     daemon is down; suspect means "maybe".
//   - Gossiped PostgreSQL health: with the daemon alive and its state fresh,
//     an unhealthy or stopped PostgreSQL is first the daemon's to fix: it
//     restarts PostgreSQL in place, and only if it is not healthy again
//     within PrimaryStartTimeout is that a failure. A state older than
//     StaleAfter says nothing about PostgreSQL and only makes the primary
//     suspect.
//
// Hysteresis: a failure verdict needs the failing condition in at least
// FailObservations consecutive observations spanning at least FailAfter;
// any observation that does not show the condition resets the streak. So a
// single stale gossip, a single missed probe or one lost lease request
// never starts a failover. The detector only proposes: the election's
// revoke quorum and lease wait are what make a wrong verdict safe (a
// wrongly "failed" primary is fenced before anyone else is promoted).
package detector
