package api

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ramd/ramd/mesh"
)

// view is one request's snapshot of the gossiped cluster: a private sorted
// copy of the members plus what every endpoint derives from it. Endpoints
// that need the view build it once, so one answer never mixes two views.
type view struct {
	now     time.Time
	members []mesh.Member // sorted by node id (then name); never the Source's slice
	self    int           // index of this node in members, -1 if absent
	primary int           // index of the reported primary, -1 if none
	// claimants are the ids of alive members whose gossiped role is
	// primary, ascending. More than one means a split brain (or a view
	// caught mid-failover) and is reported, never hidden.
	claimants []int
}

func (s *server) snapshot() view {
	return newView(s.src.Members(), s.now())
}

func newView(src []mesh.Member, now time.Time) view {
	v := view{now: now, self: -1, primary: -1}
	v.members = slices.Clone(src)
	// Stable, so that duplicate ids (a misconfiguration) keep a fixed order.
	slices.SortStableFunc(v.members, func(a, b mesh.Member) int {
		if c := cmp.Compare(a.State.NodeID, b.State.NodeID); c != 0 {
			return c
		}
		return strings.Compare(a.State.Name, b.State.Name)
	})
	for i := range v.members {
		m := &v.members[i]
		if m.Self && v.self < 0 {
			v.self = i
		}
		if m.Liveness != mesh.Alive || m.State.Role != mesh.RolePrimary {
			continue
		}
		v.claimants = append(v.claimants, m.State.NodeID)
		if v.primary < 0 || morePrimary(&m.State, &v.members[v.primary].State) {
			v.primary = i
		}
	}
	return v
}

// morePrimary reports whether a has a better claim to be primary than b:
// the newer timeline wins (a promotion bumps it), then the further WAL
// position. Ties keep the earlier (lower id) member because members are
// visited in id order.
func morePrimary(a, b *mesh.NodeState) bool {
	if a.Timeline != b.Timeline {
		return a.Timeline > b.Timeline
	}
	return a.LSN > b.LSN
}

func (v *view) primaryID() int {
	if v.primary < 0 {
		return 0
	}
	return v.members[v.primary].State.NodeID
}

// find returns the index of the member with this id, -1 if none.
func (v *view) find(id int) int {
	for i := range v.members {
		if v.members[i].State.NodeID == id {
			return i
		}
	}
	return -1
}

// warnings lists what an operator must know about the view itself.
func (v *view) warnings() []string {
	w := []string{}
	if len(v.claimants) > 1 {
		w = append(w, multiplePrimaries(v.claimants))
	}
	return w
}

func multiplePrimaries(ids []int) string {
	b := []byte("multiple nodes claim primary: ")
	for i, id := range ids {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return string(b)
}

// lastSeenMs is how long ago this daemon heard from m: 0 for itself, -1 for
// a member never heard from, never negative under clock steps.
func (v *view) lastSeenMs(m *mesh.Member) int64 {
	switch {
	case m.Self:
		return 0
	case m.LastSeen.IsZero():
		return -1
	}
	return max(0, v.now.Sub(m.LastSeen).Milliseconds())
}

// nodeLabel names a member in human-readable reasons: "node 2 (pg2)".
func nodeLabel(st *mesh.NodeState) string {
	s := "node " + strconv.Itoa(st.NodeID)
	if st.Name != "" {
		s += " (" + st.Name + ")"
	}
	return s
}

// roleOr normalises a gossiped role: anything but primary or replica is
// reported as unknown, so clients can switch on three values.
func roleOr(r mesh.Role) mesh.Role {
	switch r {
	case mesh.RolePrimary, mesh.RoleReplica:
		return r
	}
	return mesh.RoleUnknown
}

func livenessOr(l mesh.Liveness) mesh.Liveness {
	if l == "" {
		return "unknown"
	}
	return l
}

// formatLSN renders a WAL position as PostgreSQL does ("16/B374D848"), like
// pg.LSN.String but without fmt, because cluster status formats one per
// node per request.
func formatLSN(l uint64) string {
	var buf [17]byte
	b := appendHex(buf[:0], l>>32)
	b = append(b, '/')
	b = appendHex(b, l&0xFFFFFFFF)
	return string(b)
}

func appendHex(b []byte, x uint64) []byte {
	const digits = "0123456789ABCDEF"
	var tmp [8]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[x&0xF]
		x >>= 4
		if x == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// tagsOrEmpty keeps "tags" an object in JSON even when a node has none.
func tagsOrEmpty(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return t
}
