package election

import (
	"fmt"
	"sort"

	"github.com/ramd/ramd/mesh"
)

// BootstrapAction is what a node whose PostgreSQL is not yet running
// should do next.
type BootstrapAction int

const (
	// Wait: not enough information yet; ask again at the next tick.
	Wait BootstrapAction = iota
	// InitPrimary: run initdb and start as the cluster's first primary.
	InitPrimary
	// Clone: take a base backup from Source and stream from it.
	Clone
	// StartExisting: the data directory is ours; start PostgreSQL on it.
	StartExisting
	// Refuse: the data directory belongs to another cluster; stop with
	// Reason and touch nothing.
	Refuse
)

func (a BootstrapAction) String() string {
	switch a {
	case Wait:
		return "wait"
	case InitPrimary:
		return "init-primary"
	case Clone:
		return "clone"
	case StartExisting:
		return "start-existing"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("BootstrapAction(%d)", int(a))
}

// BootstrapInput is everything the decision needs. It is a plain value so
// the simulator and tests can build it by hand.
type BootstrapInput struct {
	// Self is this node's id.
	Self int
	// HasData: the local data directory holds a PostgreSQL cluster.
	HasData bool
	// LocalSystemID is that cluster's system identifier (0 without data).
	LocalSystemID uint64
	// KnownSystemID is the system identifier this node recorded when it
	// joined its cluster (0 when it never did).
	KnownSystemID uint64
	// ExpectNodes is [cluster] expect_nodes.
	ExpectNodes int
	// Members is the gossiped view, this node included.
	Members []mesh.Member
	// External is a primary outside the mesh to adopt ([cluster]
	// primary_host), used only when no member has data.
	External *Endpoint
}

// Endpoint is a PostgreSQL address to clone from.
type Endpoint struct {
	NodeID int // 0 for a server outside the mesh
	Host   string
	Port   int
}

// BootstrapDecision is the outcome of Bootstrap.
type BootstrapDecision struct {
	Action BootstrapAction
	// Source is set for Clone.
	Source Endpoint
	// SystemID is the cluster's system identifier when known; the daemon
	// records it for later restarts.
	SystemID uint64
	// Reason says why, for logs and for the status API.
	Reason string
}

// Bootstrap decides what a node that is not yet serving should do.
//
// The rules, in order:
//  1. A node with data never re-initialises. It starts its own data when
//     that data matches the cluster it recorded, or — on first adoption —
//     when no visible member runs a cluster with a different system
//     identifier; otherwise it refuses.
//  2. A node without data clones from a healthy primary that is alive in
//     the mesh, if there is one.
//  3. Otherwise, once ExpectNodes members are alive and every one of them
//     has announced an empty data directory, the lowest node id runs
//     initdb; the others wait for it to become a healthy primary.
//  4. With no member holding data, a configured external primary is
//     cloned.
//
// Rule 3 is what makes "exactly one node runs initdb": every node applies
// the same rule to the same facts, and nobody acts before ExpectNodes
// daemons see each other. It is only as safe as ExpectNodes is large:
// with ExpectNodes at most half the cluster, two disjoint groups could
// each bootstrap (configs documents this).
func Bootstrap(in BootstrapInput) BootstrapDecision {
	alive := aliveMembers(in.Members)
	if in.HasData {
		return bootstrapWithData(in, alive)
	}
	if p, ok := healthyPrimary(alive, in.Self); ok {
		return BootstrapDecision{
			Action:   Clone,
			Source:   Endpoint{NodeID: p.State.NodeID, Host: p.State.PGHost, Port: p.State.PGPort},
			SystemID: p.State.SystemID,
			Reason:   fmt.Sprintf("node %d is a healthy primary", p.State.NodeID),
		}
	}
	if len(alive) < in.ExpectNodes {
		return BootstrapDecision{Action: Wait, Reason: fmt.Sprintf("waiting for %d of %d expected nodes to join the mesh", len(alive), in.ExpectNodes)}
	}
	for _, m := range alive {
		if m.State.NodeID == 0 || m.State.DataState == "" {
			return BootstrapDecision{Action: Wait, Reason: fmt.Sprintf("waiting for the state of member %s", m.State.Name)}
		}
		if m.State.NodeID != in.Self && m.State.DataState != mesh.DataEmpty {
			// Someone has (or is creating) data but is not a healthy
			// primary yet: wait for it rather than racing it.
			return BootstrapDecision{Action: Wait, Reason: fmt.Sprintf("waiting for node %d (%s) to become a healthy primary", m.State.NodeID, m.State.DataState)}
		}
	}
	if in.External != nil {
		return BootstrapDecision{Action: Clone, Source: *in.External, Reason: fmt.Sprintf("adopting external primary %s:%d", in.External.Host, in.External.Port)}
	}
	lowest := alive[0].State.NodeID // alive is sorted by node id
	if lowest == in.Self {
		return BootstrapDecision{Action: InitPrimary, Reason: fmt.Sprintf("%d nodes see each other, none has data, and this node has the lowest id", len(alive))}
	}
	return BootstrapDecision{Action: Wait, Reason: fmt.Sprintf("waiting for node %d to initialise the cluster", lowest)}
}

func bootstrapWithData(in BootstrapInput, alive []mesh.Member) BootstrapDecision {
	if in.KnownSystemID != 0 {
		if in.LocalSystemID != in.KnownSystemID {
			return BootstrapDecision{Action: Refuse, Reason: fmt.Sprintf("data directory has system identifier %d but this node belongs to the cluster with system identifier %d; move the data directory aside", in.LocalSystemID, in.KnownSystemID)}
		}
		return BootstrapDecision{Action: StartExisting, SystemID: in.LocalSystemID, Reason: "data directory belongs to this node's cluster"}
	}
	// First adoption of an existing data directory: compare with every
	// member that already runs a cluster. Wait until enough members are
	// visible that a conflict would show.
	for _, m := range alive {
		if m.State.NodeID == in.Self || m.State.SystemID == 0 {
			continue
		}
		if m.State.SystemID != in.LocalSystemID {
			return BootstrapDecision{Action: Refuse, Reason: fmt.Sprintf("data directory has system identifier %d but node %d runs the cluster with system identifier %d; this is a foreign data directory: move it aside", in.LocalSystemID, m.State.NodeID, m.State.SystemID)}
		}
	}
	if len(alive) < in.ExpectNodes {
		if _, ok := healthyPrimary(alive, in.Self); !ok {
			return BootstrapDecision{Action: Wait, Reason: fmt.Sprintf("adopting an existing data directory: waiting for %d of %d expected nodes to compare system identifiers", len(alive), in.ExpectNodes)}
		}
	}
	return BootstrapDecision{Action: StartExisting, SystemID: in.LocalSystemID, Reason: "adopting an existing data directory"}
}

// aliveMembers returns the alive members sorted by node id.
func aliveMembers(ms []mesh.Member) []mesh.Member {
	out := make([]mesh.Member, 0, len(ms))
	for _, m := range ms {
		if m.Liveness == mesh.Alive {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].State.NodeID < out[j].State.NodeID })
	return out
}

// healthyPrimary returns the alive, healthy primary other than self. When
// several claim it (which bootstrap must never create), the one with the
// highest timeline and then LSN is chosen, as a replica would follow it.
func healthyPrimary(alive []mesh.Member, self int) (mesh.Member, bool) {
	var best mesh.Member
	found := false
	for _, m := range alive {
		s := m.State
		if s.NodeID == self || s.Role != mesh.RolePrimary || !s.Healthy || s.PGHost == "" || s.PGPort == 0 {
			continue
		}
		if !found || s.Timeline > best.State.Timeline || (s.Timeline == best.State.Timeline && s.LSN > best.State.LSN) {
			best, found = m, true
		}
	}
	return best, found
}
