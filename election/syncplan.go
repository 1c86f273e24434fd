package election

import (
	"fmt"
	"slices"
)

// The synchronous modes promise that a failover never loses an
// acknowledged commit. Choose keeps that promise from the applied
// ClusterState.Sync (k of its Members flushed every acknowledged commit);
// PlanSync keeps the applied setting true while the primary's set of
// healthy standbys changes. It is pure: the daemon feeds it what the lease
// gate and pg_stat_replication say and carries out the plan.
//
// The invariant: every commit the primary acknowledged is on at least
// k(A) members of A, the applied setting (or A is off and promises
// nothing). Two rules keep it:
//
//   - the gate, which acknowledges commits, counts a set G ⊆ A with
//     k(G) ≥ k(A): a commit it acknowledges is then on k(A) members of A;
//   - A is replaced by a set B only when that keeps the commits already
//     acknowledged covered: B ⊇ A with k(B) ≤ k(A) (a superset with a
//     lower or equal k is implied), or B is one the gate already counts
//     and k(B) of B's members have flushed everything the gate confirmed
//     (catch-up).
//
// So a change that adds standbys goes: propose A ∪ T (grow), then count T,
// then, once T caught up, propose T (shrink). Proposals carry the primary's
// fencing token, so one made by a primary that has since been replaced is
// refused when it commits, and the version they were based on, so one that
// commits late (after another SetSync) is refused too. While a proposal is
// in flight the gate keeps counting what it counted when it was made (a
// subset of both the applied setting and the proposal), so whichever of
// the two ends up applied, the gate's set is inside it.

// SyncPlanInput is what the primary knows when it plans.
type SyncPlanInput struct {
	// Mode and NumSync are wanted (the primary's configuration):
	// synchronous_mode and synchronous_node_count.
	Mode    SyncMode
	NumSync int
	// Token is the primary's fencing token (stamped on proposals).
	Token uint64
	// Applied is the applied ClusterState.Sync with its members resolved
	// (see ResolveSync): never "all", and never the primary itself.
	Applied SyncState
	// Healthy are the standbys streaming from this primary that may be
	// synchronous (the primary itself is never one).
	Healthy []uint64
	// Flushed is each standby's flushed WAL position, as pg_stat_replication
	// reports it.
	Flushed map[uint64]uint64
	// Confirmed bounds what the gate has confirmed: every acknowledged
	// commit is at or below it. It must be read after Current was
	// installed, so that it covers every confirmation made under an
	// earlier plan.
	Confirmed uint64
	// Current is the plan the gate follows now. A set is promised only
	// once the gate already counts it (a plan earlier), so that no
	// confirmation made under an older set escapes Confirmed.
	Current SyncPlan
	// InFlight: a proposal based on Applied.Version was made and may still
	// apply; the gate keeps following Current until it has.
	InFlight bool
}

// SyncPlan is what the primary does next.
type SyncPlan struct {
	// Enforce: the gate confirms only what NumSync of Members flushed.
	// False: the gate confirms on the lease alone (asynchronous).
	Enforce bool
	Members []uint64
	NumSync int
	// Propose, if set, is the SetSync proposal to make now.
	Propose *SyncState
	// Reason says what the plan waits for or changes, for logs and status.
	Reason string
}

// ResolveSync turns the applied setting into explicit members: an empty
// member list ("every member", as bootstrap records it) becomes members,
// and primary is taken out (it is not its own standby).
func ResolveSync(s SyncState, members []uint64, primary uint64) SyncState {
	v := s.Version
	s = s.normalized()
	s.Version = v
	if !s.Enabled() {
		return s
	}
	if len(s.Members) == 0 {
		s.Members = sortedUnique(members)
	}
	s.Members = slices.DeleteFunc(slices.Clone(s.Members), func(id uint64) bool { return id == primary })
	return s
}

// PlanSync decides the gate's counting set and the next SetSync proposal.
func PlanSync(in SyncPlanInput) SyncPlan {
	if in.InFlight {
		p := in.Current
		p.Propose = nil
		p.Reason = "waiting for the synchronous setting proposed last to apply"
		return p
	}
	target := syncTarget(in)
	applied := in.Applied
	if !applied.Enabled() {
		// Nothing is promised yet: counting any set is safe. Promise it
		// once its members hold everything already acknowledged.
		if !target.Enabled() {
			return SyncPlan{Reason: "asynchronous"}
		}
		p := enforce(target)
		if len(target.Members) > 0 && counting(in.Current, target) && caughtUp(target, in) {
			p.Propose = stamped(target, in)
			p.Reason = fmt.Sprintf("promising %s", target)
		} else {
			p.Reason = fmt.Sprintf("counting %s; waiting for it to catch up before promising it", target)
		}
		return p
	}
	if !target.Enabled() {
		// Quorum mode with no healthy standby: fall back to asynchronous.
		// Keep counting the applied set until "off" is applied.
		p := enforce(applied)
		p.Propose = stamped(SyncState{}, in)
		p.Reason = "no healthy standby: falling back to asynchronous commits"
		return p
	}
	kA := effectiveK(applied)
	if subset(target.Members, applied.Members) && target.NumSync >= kA {
		p := enforce(target)
		switch {
		case sameSync(target, applied):
			p.Reason = fmt.Sprintf("synchronous: %s", target)
		case len(target.Members) == 0:
			p.Reason = fmt.Sprintf("no healthy standby; %s mode waits for %d", target.Mode, target.NumSync)
		case counting(in.Current, target) && caughtUp(target, in):
			p.Propose = stamped(target, in)
			p.Reason = fmt.Sprintf("changing the synchronous set to %s", target)
		default:
			p.Reason = fmt.Sprintf("counting %s; waiting for it to catch up before promising it", target)
		}
		return p
	}
	// The target adds standbys or lowers k: first promise the union with
	// the lower k (implied by what is promised now), keep counting the
	// applied set meanwhile.
	grown := SyncState{Mode: target.Mode, Members: sortedUnique(append(slices.Clone(applied.Members), target.Members...)), NumSync: min(kA, target.NumSync)}
	p := enforce(applied)
	p.Propose = stamped(grown, in)
	p.Reason = fmt.Sprintf("widening the synchronous set to %s before counting %s", grown, target)
	return p
}

// syncTarget is the setting the primary wants now.
func syncTarget(in SyncPlanInput) SyncState {
	k := max(in.NumSync, 1)
	healthy := sortedUnique(in.Healthy)
	switch in.Mode {
	case SyncQuorum:
		if len(healthy) == 0 {
			return SyncState{}
		}
		return SyncState{Mode: SyncQuorum, Members: healthy, NumSync: min(k, len(healthy))}
	case SyncStrict:
		return SyncState{Mode: SyncStrict, Members: healthy, NumSync: k}
	}
	return SyncState{}
}

// effectiveK is the k Choose applies to s.
func effectiveK(s SyncState) int { return min(max(s.NumSync, 1), len(s.Members)) }

// caughtUp: at least k of s's members flushed everything confirmed.
func caughtUp(s SyncState, in SyncPlanInput) bool {
	n := 0
	for _, id := range s.Members {
		if f, ok := in.Flushed[id]; ok && f >= in.Confirmed {
			n++
		}
	}
	return n >= effectiveK(s) && n > 0
}

// counting reports whether the gate already counts s (same members, k at
// least s's).
func counting(p SyncPlan, s SyncState) bool {
	return p.Enforce && slices.Equal(p.Members, s.Members) && p.NumSync >= max(s.NumSync, 1)
}

func enforce(s SyncState) SyncPlan {
	return SyncPlan{Enforce: true, Members: slices.Clone(s.Members), NumSync: max(s.NumSync, 1)}
}

func stamped(s SyncState, in SyncPlanInput) *SyncState {
	s.Token, s.Version = in.Token, in.Applied.Version
	return &s
}

func sameSync(a, b SyncState) bool {
	return a.Mode == b.Mode && effectiveK(a) == effectiveK(b) && slices.Equal(a.Members, b.Members)
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []uint64) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// Ceiling is the position the gate may confirm when it counts k of
// members: the k-th highest flushed position among them (0 when fewer
// than k reported).
func Ceiling(members []uint64, k int, flushed map[uint64]uint64) uint64 {
	var fs []uint64
	for _, id := range members {
		if f, ok := flushed[id]; ok {
			fs = append(fs, f)
		}
	}
	k = max(k, 1)
	if len(fs) < k {
		return 0
	}
	slices.Sort(fs)
	return fs[len(fs)-k]
}
