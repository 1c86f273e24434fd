package daemon

import (
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/pg"
)

// The story of a failover in the log. Every change of state is one info
// line carrying the node (every daemon, pg and election line has
// node=<this node's name>; mesh lines name the member they are about),
// the fencing token and the reason:
//
//	component=election  "became the coordinator" / "no longer the coordinator"
//	component=election  "failover", "lease-acquired", "lease-lost", "promote",
//	                    "demote", "step-down", "release", ... (the election's
//	                    own events, message = event kind)
//	component=election  "primary changed" (the applied token and primary)
//	component=election  "desired role changed" (what this node must become)
//	component=daemon    "postgresql role changed" (what the health check saw)
//	component=daemon    "promoting PostgreSQL", "rejoining as a replica with
//	                    pg_rewind", "re-pointing replica", ...
//	component=pg        "postgresql promoted", "pg_rewind started/finished",
//	                    "basebackup started/finished" (and "... progress"
//	                    every 10 s while they run)
//	component=mesh      "member suspect", "member failed", "member joined",
//	                    "member left"
//
// So `grep -E '"component":"(election|daemon|pg)"'` on the nodes' logs,
// sorted by timestamp, tells who decided what, when and why.

// storyState is what was last logged, to log changes only.
type storyState struct {
	coordinator bool
	known       bool // an applied state was logged
	token       uint64
	primary     uint64
	role        string // the local PostgreSQL's role ("" before the first check)
}

// logCoordinator logs a change of this node's raft leadership: the
// coordinator runs failovers, so who it is matters to the story.
func (f *failoverLoop) logCoordinator(st election.ClusterState) {
	is := f.node.IsLeader()
	if is == f.story.coordinator {
		return
	}
	f.story.coordinator = is
	if is {
		f.log.Info("became the coordinator", "token", st.Token, "primary", st.Primary, "reason", "elected raft leader by a quorum of voters")
	} else {
		f.log.Info("no longer the coordinator", "token", st.Token, "primary", st.Primary, "reason", "another voter leads the raft group, or this node lost contact with a quorum")
	}
}

// logApplied logs a change of the applied primary or token, with the
// reason the failover history recorded for it.
func (f *failoverLoop) logApplied(st election.ClusterState) {
	if f.story.known && st.Token == f.story.token && st.Primary == f.story.primary {
		return
	}
	reason := "state at start"
	if f.story.known {
		reason = "no failover record for this token"
		if n := len(st.History); n > 0 && st.History[n-1].Token == st.Token {
			reason = st.History[n-1].Reason
		}
	}
	f.log.Info("primary changed", "token", st.Token, "primary", st.Primary,
		"previous_token", f.story.token, "previous_primary", f.story.primary, "reason", reason)
	f.story.known, f.story.token, f.story.primary = true, st.Token, st.Primary
}

// logRole logs a change of the local PostgreSQL's role as the health
// check sees it, with the election's instruction behind it. It is called
// from the daemon's loop only.
func (d *Daemon) logRole(h pg.Health) {
	role := h.Role()
	if role == d.lastRole {
		return
	}
	prev := d.lastRole
	d.lastRole = role
	var w desired
	if d.failover != nil {
		w = d.failover.Want()
	}
	reason := w.reason
	if reason == "" {
		reason = "no instruction from the election yet"
	}
	attrs := []any{"from", prev, "to", role, "token", w.token, "timeline", h.Timeline, "reason", reason}
	if h.Error != "" {
		attrs = append(attrs, "check_error", h.Error)
	}
	d.log.Info("postgresql role changed", attrs...)
}
