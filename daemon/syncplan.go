package daemon

import (
	"slices"
	"strings"
	"time"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
)

// syncProposal is a SetSync this primary made and that may still apply.
type syncProposal struct {
	s  election.SyncState
	at time.Time
}

// planSync runs election.PlanSync on the primary holding the lease, hands
// the plan to the gate's watcher and proposes the setting it asks for.
// Elsewhere (and in asynchronous configurations) it only makes sure a
// primary configured with synchronous_mode = off does not leave a stale
// synchronous setting applied.
func (f *failoverLoop) planSync(st election.ClusterState, members []mesh.Member) {
	self := uint64(f.d.cfg.Cluster.NodeID)
	if !st.Bootstrapped || st.Primary != self || !f.node.LeaseValid() {
		f.syncInFlight = nil
		return
	}
	if p := f.syncInFlight; p != nil && (st.Sync.Version != p.s.Version || st.Token != p.s.Token) {
		f.syncInFlight = nil // applied, or refused: either way no longer pending
	}
	eff := f.d.effective()
	mode := election.SyncMode(eff.Failover.SynchronousMode)
	if mode == "off" {
		mode = election.SyncOff
	}
	sr := f.d.gate.syncRep()
	if mode == election.SyncOff {
		// No watcher: the gate confirms on the lease alone. Withdraw a
		// synchronous promise left by an earlier configuration.
		if st.Sync.Enabled() && f.syncInFlight == nil {
			f.proposeSync(election.SyncState{Token: st.Token, Version: st.Sync.Version})
		}
		return
	}
	if sr == nil {
		return // the gate is not running yet
	}
	ids := map[string]uint64{}
	for _, m := range members {
		if id := uint64(m.State.NodeID); id != 0 && id != self && m.State.Name != "" {
			ids[strings.ToLower(m.State.Name)] = id
		}
	}
	current, planned, flushed, confirmed, ok := sr.view(ids)
	if !ok {
		return // nothing read yet: the gate keeps confirming nothing
	}
	if !planned {
		current = election.SyncPlan{Enforce: true} // what the gate does before a first plan
	}
	var healthy []uint64
	for id := range flushed {
		if m := memberByID(members, id); m != nil && m.Liveness == mesh.Alive && !isTrue(m.State.Tags["nosync"]) && !slices.Contains(st.Detached, id) {
			healthy = append(healthy, id)
		}
	}
	slices.Sort(healthy)
	in := election.SyncPlanInput{
		Mode: mode, NumSync: eff.Failover.SynchronousNodeCount, Token: st.Token,
		Applied:   election.ResolveSync(st.Sync, append(slices.Clone(st.Voters), st.Learners...), self),
		Healthy:   healthy,
		Flushed:   flushed,
		Confirmed: confirmed,
		InFlight:  f.syncInFlight != nil,
		Current:   current,
	}
	plan := election.PlanSync(in)
	if plan.Reason != f.syncReason {
		f.log.Info("synchronous replication", "plan", plan.Reason, "counting", plan.Members, "k", plan.NumSync, "enforce", plan.Enforce)
		f.syncReason = plan.Reason
	}
	sr.setPlan(plan, ids)
	switch {
	case plan.Propose != nil:
		f.proposeSync(*plan.Propose)
	case f.syncInFlight != nil && time.Since(f.syncInFlight.at) >= syncProposeRetry:
		f.proposeSync(f.syncInFlight.s) // same proposal again: its version makes a duplicate harmless
	}
}

func (f *failoverLoop) proposeSync(s election.SyncState) {
	if err := f.node.SetSync(s); err != nil {
		f.log.Warn("proposing the synchronous setting failed", "setting", s.String(), "error", err)
		return
	}
	f.syncInFlight = &syncProposal{s: s, at: time.Now()}
}

func memberByID(ms []mesh.Member, id uint64) *mesh.Member {
	for i := range ms {
		if uint64(ms[i].State.NodeID) == id {
			return &ms[i]
		}
	}
	return nil
}
