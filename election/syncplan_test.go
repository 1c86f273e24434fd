package election

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPlanSyncSteps(t *testing.T) {
	all := SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1}
	cases := []struct {
		name    string
		in      SyncPlanInput
		enforce bool
		members []uint64
		k       int
		propose *SyncState
	}{
		{
			name:    "off stays off",
			in:      SyncPlanInput{Mode: SyncOff, Healthy: []uint64{2, 3}},
			enforce: false,
		},
		{
			name:    "steady quorum",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: all, Healthy: []uint64{2, 3}, Flushed: map[uint64]uint64{2: 10, 3: 10}, Confirmed: 10},
			enforce: true, members: []uint64{2, 3}, k: 1,
		},
		{
			name:    "lost standby: count the survivor first",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: all, Healthy: []uint64{2}, Flushed: map[uint64]uint64{2: 10}, Confirmed: 10, Current: SyncPlan{Enforce: true, Members: []uint64{2, 3}, NumSync: 1}},
			enforce: true, members: []uint64{2}, k: 1,
		},
		{
			name:    "lost standby: shrink once the gate counts the survivor and it caught up",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1, Version: 3}, Healthy: []uint64{2}, Flushed: map[uint64]uint64{2: 10}, Confirmed: 10, Current: SyncPlan{Enforce: true, Members: []uint64{2}, NumSync: 1}},
			enforce: true, members: []uint64{2}, k: 1,
			propose: &SyncState{Mode: SyncQuorum, Members: []uint64{2}, NumSync: 1, Token: 4, Version: 3},
		},
		{
			name:    "in flight: keep the current gate, propose nothing",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: all, Healthy: []uint64{3}, Flushed: map[uint64]uint64{3: 10}, Confirmed: 10, InFlight: true, Current: SyncPlan{Enforce: true, Members: []uint64{2}, NumSync: 1}},
			enforce: true, members: []uint64{2}, k: 1,
		},
		{
			name:    "lost standby, survivor behind: count it, do not shrink yet",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: all, Healthy: []uint64{2}, Flushed: map[uint64]uint64{2: 9}, Confirmed: 10},
			enforce: true, members: []uint64{2}, k: 1,
		},
		{
			name:    "standby returns: widen first, keep counting the applied set",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: SyncState{Mode: SyncQuorum, Members: []uint64{2}, NumSync: 1}, Healthy: []uint64{2, 3}, Flushed: map[uint64]uint64{2: 10, 3: 4}, Confirmed: 10},
			enforce: true, members: []uint64{2}, k: 1,
			propose: &SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1, Token: 4},
		},
		{
			name:    "quorum with no standby falls back to async after applying off",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 1, Token: 4, Applied: all, Confirmed: 10},
			enforce: true, members: []uint64{2, 3}, k: 1,
			propose: &SyncState{Token: 4},
		},
		{
			name:    "strict with no standby blocks and proposes nothing",
			in:      SyncPlanInput{Mode: SyncStrict, NumSync: 1, Token: 4, Applied: SyncState{Mode: SyncStrict, Members: []uint64{2, 3}, NumSync: 1}, Confirmed: 10},
			enforce: true, members: nil, k: 1,
		},
		{
			name:    "from off: count at once, promise once caught up",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 2, Token: 1, Healthy: []uint64{2, 3}, Flushed: map[uint64]uint64{2: 10, 3: 10}, Confirmed: 10, Current: SyncPlan{Enforce: true, Members: []uint64{2, 3}, NumSync: 2}},
			enforce: true, members: []uint64{2, 3}, k: 2,
			propose: &SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 2, Token: 1},
		},
		{
			name:    "k lowered to the healthy count: lower k on the applied set first",
			in:      SyncPlanInput{Mode: SyncQuorum, NumSync: 2, Token: 1, Applied: SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 2}, Healthy: []uint64{2}, Flushed: map[uint64]uint64{2: 10}, Confirmed: 10},
			enforce: true, members: []uint64{2, 3}, k: 2,
			propose: &SyncState{Mode: SyncQuorum, Members: []uint64{2, 3}, NumSync: 1, Token: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanSync(c.in)
			if p.Enforce != c.enforce || (c.enforce && (!slices.Equal(p.Members, c.members) || p.NumSync != c.k)) {
				t.Fatalf("gate: enforce=%v members=%v k=%d, want %v %v %d (%s)", p.Enforce, p.Members, p.NumSync, c.enforce, c.members, c.k, p.Reason)
			}
			switch {
			case c.propose == nil && p.Propose != nil:
				t.Fatalf("proposes %+v, want nothing (%s)", *p.Propose, p.Reason)
			case c.propose != nil && p.Propose == nil:
				t.Fatalf("proposes nothing, want %+v (%s)", *c.propose, p.Reason)
			case c.propose != nil && (p.Propose.Mode != c.propose.Mode || p.Propose.NumSync != c.propose.NumSync || p.Propose.Token != c.propose.Token || p.Propose.Version != c.propose.Version || !slices.Equal(p.Propose.Members, c.propose.Members)):
				t.Fatalf("proposes %+v, want %+v", *p.Propose, *c.propose)
			}
		})
	}
}

func TestCeiling(t *testing.T) {
	f := map[uint64]uint64{2: 30, 3: 10, 4: 20}
	for _, c := range []struct {
		members []uint64
		k       int
		want    uint64
	}{
		{[]uint64{2, 3, 4}, 1, 30},
		{[]uint64{2, 3, 4}, 2, 20},
		{[]uint64{2, 3, 4}, 3, 10},
		{[]uint64{2, 3, 4, 5}, 4, 0},
		{[]uint64{3, 5}, 1, 10},
		{nil, 1, 0},
	} {
		if got := Ceiling(c.members, c.k, f); got != c.want {
			t.Errorf("Ceiling(%v, %d) = %d, want %d", c.members, c.k, got, c.want)
		}
	}
}

// TestPlanSyncKeepsPromise drives PlanSync through random histories (standbys
// failing, returning, lagging; proposals committing late; modes and k) and
// checks after every step the promise Choose relies on: every commit the
// gate confirmed is flushed on at least k of the applied members.
func TestPlanSyncKeepsPromise(t *testing.T) {
	for seed := uint64(1); seed <= 3000; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		standbys := []uint64{2, 3, 4, 5}[:2+r.IntN(3)]
		mode := []SyncMode{SyncQuorum, SyncStrict}[r.IntN(2)]
		k := 1 + r.IntN(len(standbys))
		// Bootstrap records "every member".
		applied := ResolveSync(SyncState{Mode: mode, NumSync: k}, append([]uint64{1}, standbys...), 1)
		if r.IntN(3) == 0 {
			applied = SyncState{} // the mode was just switched on
		}
		flushed := map[uint64]uint64{}
		healthy := map[uint64]bool{}
		for _, id := range standbys {
			healthy[id] = true
		}
		var walEnd, confirmed uint64
		// The gate counts nothing until the first plan (the daemon's
		// ceiling is 0 until then).
		gate := SyncPlan{Enforce: true}
		var pending []*SyncState
		inFlight := false
		for step := 0; step < 300; step++ {
			switch r.IntN(7) {
			case 0:
				walEnd += uint64(1 + r.IntN(5))
			case 1: // a healthy standby flushes some of the WAL
				id := standbys[r.IntN(len(standbys))]
				if healthy[id] && flushed[id] < walEnd {
					flushed[id] += uint64(1 + r.IntN(int(walEnd-flushed[id])))
				}
			case 2:
				id := standbys[r.IntN(len(standbys))]
				healthy[id] = !healthy[id]
			case 3: // the gate confirms what its current plan allows
				c := walEnd
				if gate.Enforce {
					c = min(c, Ceiling(gate.Members, gate.NumSync, flushed))
				}
				confirmed = max(confirmed, c)
			case 4, 5:
				in := SyncPlanInput{Mode: mode, NumSync: k, Token: 1, Applied: applied, Flushed: map[uint64]uint64{}, Confirmed: confirmed, InFlight: inFlight, Current: gate}
				for _, id := range standbys {
					if healthy[id] {
						in.Healthy = append(in.Healthy, id)
						in.Flushed[id] = flushed[id]
					}
				}
				gate = PlanSync(in)
				if gate.Propose != nil {
					// Sometimes the same proposal twice (a retry).
					pending = append(pending, gate.Propose)
					if r.IntN(4) == 0 {
						pending = append(pending, gate.Propose)
					}
					inFlight = true
				}
			case 6: // a proposal commits: applied if based on the applied version
				if len(pending) > 0 {
					i := r.IntN(len(pending))
					if p := pending[i]; p.Version == applied.Version {
						v := applied.Version
						applied = ResolveSync(*p, nil, 1)
						applied.Version = v + 1
						inFlight = false
					}
					pending = slices.Delete(pending, i, i+1)
				}
			}
			if !applied.Enabled() {
				continue
			}
			have := 0
			for _, id := range applied.Members {
				if flushed[id] >= confirmed {
					have++
				}
			}
			if confirmed > 0 && have < effectiveK(applied) {
				t.Fatalf("seed %d step %d: confirmed %d but only %d of applied %s flushed it (flushed %v, gate %v k=%d)", seed, step, confirmed, have, applied, flushed, gate.Members, gate.NumSync)
			}
		}
	}
}
