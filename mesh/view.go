package mesh

import (
	"cmp"
	"maps"
	"reflect"
	"slices"
	"time"
)

// view is this node's picture of the cluster: the local state plus, per
// remote node name, the last accepted state and the failure detector's
// verdict. It holds the merge rules and nothing else: no goroutines, no
// clock (callers pass now), no locking (Mesh serialises calls), no logging
// (methods return what happened and Mesh logs).
type view struct {
	self    string
	cluster string

	local     NodeState
	localSeen time.Time // when the local state was last set
	localAddr string

	entries map[string]*entry
}

// entry is what the view knows about one remote node.
type entry struct {
	// state is the newest accepted state; StartedAt == 0 means none yet.
	state NodeState
	// meta comes from memberlist node metadata and stands in for the
	// state until the first one arrives.
	meta nodeMeta
	// liveness is "" until memberlist reports the node: a node known only
	// from gossiped states is not shown.
	liveness Liveness
	addr     string
	lastSeen time.Time
	// leaveStartedAt is the boot (StartedAt) that sent a graceful leave
	// notice; when that boot disappears it is Left, not Dead.
	leaveStartedAt int64
}

// applyResult says what applyState did with a state.
type applyResult int

const (
	// applied: the state was newer and replaced the stored one.
	applied applyResult = iota
	// refreshed: the same (StartedAt, Version) with a newer ProducedAt,
	// i.e. a periodic re-broadcast; only ProducedAt and LastSeen moved.
	refreshed
	// stale: not newer than the stored state.
	stale
	// invalid: no name or no StartedAt.
	invalid
	// foreignCluster: the state's ClusterName is not ours.
	foreignCluster
	// ownEcho: our own current boot's state coming back to us.
	ownEcho
	// ownStale: our own name from an earlier boot (peers still hold the
	// state from before our restart).
	ownStale
	// ownConflict: our own name from a newer boot or an unknown version
	// of this boot: another process claims our name.
	ownConflict
)

var applyResultNames = [...]string{"applied", "refreshed", "stale", "invalid", "foreign cluster", "own echo", "own stale", "own name conflict"}

func (r applyResult) String() string {
	if int(r) < len(applyResultNames) {
		return applyResultNames[r]
	}
	return "unknown"
}

// changed reports whether the result altered what Members shows in a way
// subscribers care about (a heartbeat refresh does not).
func (r applyResult) changed() bool { return r == applied }

// newView starts a view whose local state is a placeholder for this boot.
// startedAt must be unique per boot and increase across restarts (Unix
// nanoseconds of the boot).
func newView(self, cluster string, startedAt int64, now time.Time) *view {
	return &view{
		self:    self,
		cluster: cluster,
		local: NodeState{
			Name:        self,
			ClusterName: cluster,
			Role:        RoleUnknown,
			StartedAt:   startedAt,
			ProducedAt:  now.UnixMilli(),
		},
		localSeen: now,
		entries:   make(map[string]*entry),
	}
}

// setLocal stamps s as the local state: Name, ClusterName and StartedAt
// are ours whatever s says, Version moves only when the content (anything
// but the stamps) changed, ProducedAt is now. It returns the stamped state
// and whether the content changed.
func (v *view) setLocal(s NodeState, now time.Time) (NodeState, bool) {
	s = normalizeState(s)
	s.Name = v.self
	s.ClusterName = v.cluster
	s.StartedAt = v.local.StartedAt
	s.Version = v.local.Version
	s.ProducedAt = v.local.ProducedAt
	changed := !reflect.DeepEqual(s, v.local)
	if changed {
		s.Version++
	}
	s.ProducedAt = now.UnixMilli()
	v.local = s
	v.localSeen = now
	return cloneState(s), changed
}

// applyState merges a state received from the network.
func (v *view) applyState(s NodeState, now time.Time) applyResult {
	if s.Name == "" || s.StartedAt <= 0 {
		return invalid
	}
	if s.ClusterName != v.cluster {
		return foreignCluster
	}
	if s.Name == v.self {
		switch {
		case s.StartedAt < v.local.StartedAt:
			return ownStale
		case s.StartedAt == v.local.StartedAt && s.Version <= v.local.Version:
			return ownEcho
		default:
			return ownConflict
		}
	}
	e := v.entry(s.Name)
	switch {
	case e.state.StartedAt == 0 || s.NewerThan(e.state):
		e.state = normalizeState(s)
		e.lastSeen = now
		return applied
	case s.StartedAt == e.state.StartedAt && s.Version == e.state.Version && s.ProducedAt > e.state.ProducedAt:
		e.state.ProducedAt = s.ProducedAt
		e.lastSeen = now
		return refreshed
	}
	return stale
}

// setLiveness records a verdict of the failure detector. addr, if not
// empty, is the member's current gossip address. It reports whether
// anything changed; LastSeen moves only then.
func (v *view) setLiveness(name string, l Liveness, addr string, now time.Time) bool {
	if name == v.self {
		if addr != "" {
			v.localAddr = addr
		}
		return false
	}
	e := v.entry(name)
	if e.liveness == l && (addr == "" || e.addr == addr) {
		return false
	}
	e.liveness = l
	if addr != "" {
		e.addr = addr
	}
	e.lastSeen = now
	return true
}

// join records that memberlist sees the node alive (NotifyJoin or
// NotifyUpdate), with its address and metadata. A pending leave notice is
// forgotten: the node is back.
func (v *view) join(name, addr string, meta nodeMeta, now time.Time) bool {
	changed := v.setLiveness(name, Alive, addr, now)
	if name == v.self {
		return changed
	}
	e := v.entries[name]
	e.leaveStartedAt = 0
	if e.meta != meta {
		e.meta = meta
		changed = true
	}
	return changed
}

// down records memberlist's NotifyLeave: Left if the current boot sent a
// leave notice, Dead otherwise.
func (v *view) down(name, addr string, now time.Time) bool {
	if name == v.self {
		return false
	}
	l := Dead
	if e, ok := v.entries[name]; ok && e.leaveStartedAt != 0 && e.leaveStartedAt >= e.state.StartedAt {
		l = Left
	}
	return v.setLiveness(name, l, addr, now)
}

// leave records a graceful leave notice. It may arrive before or after
// memberlist's NotifyLeave; in the second case Dead turns into Left. A
// notice from an older boot than the state we hold is stale.
func (v *view) leave(n leaveNotice, now time.Time) bool {
	if n.Name == v.self || n.Name == "" {
		return false
	}
	e := v.entry(n.Name)
	if n.StartedAt < e.state.StartedAt {
		return false
	}
	e.leaveStartedAt = n.StartedAt
	if e.liveness == Dead {
		return v.setLiveness(n.Name, Left, "", now)
	}
	return false
}

// suspect records that our own probe of an alive member failed. Only an
// Alive member can become Suspect: a late hint must not resurrect a dead
// one.
func (v *view) suspect(name string, now time.Time) bool {
	if e, ok := v.entries[name]; ok && name != v.self && e.liveness == Alive {
		return v.setLiveness(name, Suspect, "", now)
	}
	return false
}

// unsuspect records a direct ack from a member: a Suspect becomes Alive
// again (memberlist sends no event when a suspect refutes).
func (v *view) unsuspect(name string, now time.Time) bool {
	if e, ok := v.entries[name]; ok && e.liveness == Suspect {
		return v.setLiveness(name, Alive, "", now)
	}
	return false
}

func (v *view) entry(name string) *entry {
	e, ok := v.entries[name]
	if !ok {
		e = &entry{}
		v.entries[name] = e
	}
	return e
}

// snapshot returns every member memberlist knows of, self included, sorted
// by NodeID then name. States are deep copies.
func (v *view) snapshot() []Member {
	out := make([]Member, 0, len(v.entries)+1)
	out = append(out, Member{
		State:    cloneState(v.local),
		Liveness: Alive,
		Addr:     v.localAddr,
		LastSeen: v.localSeen,
		Self:     true,
	})
	for name, e := range v.entries {
		if e.liveness == "" {
			continue
		}
		st := cloneState(e.state)
		if st.StartedAt == 0 {
			// Known from memberlist only: show what its metadata says.
			st = NodeState{Name: name, NodeID: e.meta.NodeID, APIURL: e.meta.APIURL, Role: RoleUnknown}
		}
		out = append(out, Member{State: st, Liveness: e.liveness, Addr: e.addr, LastSeen: e.lastSeen})
	}
	slices.SortFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.State.NodeID, b.State.NodeID), cmp.Compare(a.State.Name, b.State.Name))
	})
	return out
}

// states returns every state worth handing to a peer in push/pull: ours
// and every one received, whatever the member's liveness (a joining node
// then learns dead members' last states too).
func (v *view) states() []NodeState {
	out := make([]NodeState, 0, len(v.entries)+1)
	out = append(out, cloneState(v.local))
	for _, e := range v.entries {
		if e.state.StartedAt != 0 {
			out = append(out, cloneState(e.state))
		}
	}
	return out
}

// liveAddrs maps each live member's gossip address (ours included) to its
// name. The addresses were copied in memberlist's event callbacks, under
// memberlist's lock: the *Node values memberlist.Members returns are
// rewritten concurrently and must not be read outside it.
func (v *view) liveAddrs() map[string]string {
	out := make(map[string]string, len(v.entries)+1)
	if v.localAddr != "" {
		out[v.localAddr] = v.self
	}
	for name, e := range v.entries {
		if (e.liveness == Alive || e.liveness == Suspect) && e.addr != "" {
			out[e.addr] = name
		}
	}
	return out
}

// liveCount is the number of members, self included, that memberlist has
// not declared failed (Alive or Suspect), like memberlist's NumMembers.
func (v *view) liveCount() int {
	n := 1
	for _, e := range v.entries {
		if e.liveness == Alive || e.liveness == Suspect {
			n++
		}
	}
	return n
}

// cloneState deep-copies the tag map so callers cannot modify the view.
func cloneState(s NodeState) NodeState {
	s.Tags = maps.Clone(s.Tags)
	return s
}
