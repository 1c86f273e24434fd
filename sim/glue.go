package sim

import (
	"fmt"
	"time"

	"github.com/ramd/ramd/detector"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
)

// This file is the daemon glue: how a daemon turns its mesh view and its
// PostgreSQL facts into inputs for election.Node and detector.Detector.
// It is deliberately small and free of simulator types (it sees a
// peerView, a pgFacts and the Node) so the real daemon can share it later;
// everything about simulated time, network and PostgreSQL stays in
// nodemodel.go and run.go.

// glueConfig holds the daemon-side timings.
type glueConfig struct {
	// SuspectAfter / DeadAfter: silence after which the simulated SWIM
	// marks a peer suspect / dead (memberlist tuned as in the field notes
	// detects a dead node in about a second).
	SuspectAfter, DeadAfter time.Duration
	// AdminEvery: how often the raft leader retries bootstrap and
	// membership proposals.
	AdminEvery time.Duration
	// ReleaseAfter: a primary that could not hold its lease this long
	// releases it (see releaseIfStuck).
	ReleaseAfter time.Duration
	// BootstrapPrimary is the node that ran initdb.
	BootstrapPrimary uint64
}

// peerView is what gossip told this daemon about one peer.
type peerView struct {
	state   mesh.NodeState
	heardAt time.Duration // this daemon's monotonic clock
}

// pgFacts is the daemon's measurement of its PostgreSQL.
type pgFacts struct {
	running, healthy, primary bool
	// standbyOK: running as a replica with no operation in progress.
	standbyOK bool
	position  election.Position
	// fencedPrimary: the primary named under the current token, without
	// its lease, its WAL that token's history (election.Local).
	fencedPrimary bool
}

// localFacts is what SetLocal is given. Healthy here means "runs as a
// replica that could be promoted", not NodeState.Healthy's "streaming":
// when the primary dies nobody streams, and requiring it would leave
// Choose with no eligible candidate (the simulator found exactly that).
func localFacts(f pgFacts) election.Local {
	return election.Local{Healthy: f.running && f.standbyOK, Position: f.position, FencedPrimary: f.fencedPrimary}
}

// nodeState is what the daemon gossips about itself.
func nodeState(id uint64, f pgFacts, startedAt int64, version uint64, wallMS int64) mesh.NodeState {
	role := mesh.RoleReplica
	if f.primary {
		role = mesh.RolePrimary
	}
	if !f.running {
		role = mesh.RoleUnknown
	}
	return mesh.NodeState{NodeID: int(id), DataState: mesh.DataReady, Role: role, PGRunning: f.running, Healthy: f.healthy,
		Timeline: f.position.Timeline, LSN: f.position.LSN, StartedAt: startedAt, Version: version, ProducedAt: wallMS}
}

// member turns a gossip view into the mesh.Member the detector expects,
// with SWIM's verdict derived from silence.
func member(c glueConfig, v *peerView, now time.Duration) *mesh.Member {
	if v == nil {
		return nil
	}
	lv := mesh.Alive
	switch age := now - v.heardAt; {
	case age >= c.DeadAfter:
		lv = mesh.Dead
	case age >= c.SuspectAfter:
		lv = mesh.Suspect
	}
	return &mesh.Member{State: v.state, Liveness: lv}
}

// observe runs the detector on the applied primary and reports a failure
// to the Node (only the coordinator acts on it). It returns the verdict.

func observe(c glueConfig, n election.Backend, d *detector.Detector, views map[uint64]*peerView, wallMS int64) detector.Verdict {
	st := n.State()
	if !st.Bootstrapped || st.Primary == n.ID() {
		return detector.Verdict{}
	}
	last, seen := n.LastLeaseRequest(st.Primary)
	v := d.Observe(detector.Observation{Now: n.Now(), WallNow: wallMS, PrimaryID: int(st.Primary),
		Primary: member(c, views[st.Primary], n.Now()), LeaseSeen: seen, LastLeaseRequest: last})
	if v.Status == detector.PrimaryFailed {
		n.ReportPrimaryFailed(v.Reason)
	}
	return v
}

// admin is the raft leader's housekeeping: propose the bootstrap and add
// configured nodes that are not members yet (beyond MaxVoters they join
// as learners).
func admin(c glueConfig, n election.Backend, configured []uint64) {
	if !n.IsLeader() {
		return
	}
	st := n.State()
	if !st.Bootstrapped {
		_ = n.ProposeBootstrap(c.BootstrapPrimary)
		return
	}
	for _, id := range configured {
		known := st.IsVoter(id)
		for _, l := range st.Learners {
			known = known || l == id
		}
		if !known {
			_ = n.AddMember(id) // one at a time: raft refuses overlapping changes
			return
		}
	}
}

// releaseIfStuck gives up a lease this primary has not been able to hold
// for ReleaseAfter (lastValid: when it last held it, or was promoted).
//
// History: it was the workaround for a liveness bug the simulator found
// (a failover abandoned after its revoke quorum was never resumed, and a
// primary back up and gossiping "healthy" never made the detector report
// it again). election now resumes such failovers itself (see its doc.go,
// "Resuming an abandoned failover"), so the simulator runs without this
// rule by default (Config.StuckRelease turns it on). The daemon keeps an
// equivalent rule as a safety net; it is harmless: Release tells the
// voters and the coordinator, which fails over with no lease wait, and a
// primary cut off from the voters releases into the void.
func releaseIfStuck(c glueConfig, n election.Backend, lastValid time.Duration) bool {
	st := n.State()
	if !st.Bootstrapped || st.Primary != n.ID() || n.LeaseValid() || n.Now()-lastValid < c.ReleaseAfter {
		return false
	}
	n.Release(fmt.Sprintf("lease not held for %v", n.Now()-lastValid))
	return true
}
