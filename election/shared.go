package election

import (
	"fmt"
	"slices"
	"strconv"
)

// Rules both backends (Node and LockNode) apply to the same replicated
// state, kept in one place so that they cannot drift apart.

// syncFor is the synchronous setup to choose under: the applied one, with
// an empty member list resolved to every member but the old primary, and
// the old primary taken out of an explicit one (it is not its own
// standby).
func syncFor(st ClusterState, members []uint64, old uint64) SyncState {
	s := st.Sync.normalized()
	if !s.Enabled() {
		return s
	}
	if len(s.Members) == 0 {
		s.Members = members
	}
	s.Members = slices.DeleteFunc(slices.Clone(s.Members), func(id uint64) bool { return id == old })
	return s
}

// maximumLag is maximum_lag_on_failover: the cluster-wide override when
// one is set (and parses), else the node's configured value.
func maximumLag(st ClusterState, configured uint64) uint64 {
	if v, ok := st.Config["failover.maximum_lag_on_failover"]; ok {
		if lag, err := strconv.ParseUint(v, 10, 64); err == nil {
			return lag
		}
	}
	return configured
}

// candidateOf is what a node answers a position request with.
func candidateOf(id uint64, l Local) Candidate {
	return Candidate{ID: id, Alive: true, Healthy: l.Healthy, Position: l.Position, Priority: l.Priority,
		NoFailover: l.NoFailover, Detached: l.Detached, FencedPrimary: l.FencedPrimary}
}

// primaryWatch keeps the highest position the primary named under the
// current token was seen at (its gossiped state, fed by the daemon), for
// maximum_lag_on_failover in asynchronous mode (ChooseInput.PrimaryLast).
type primaryWatch struct {
	token uint64
	pos   Position
	seen  bool
}

// observe records pos when it is the current primary's under st's token:
// a known position whose writer token is that token (the primary's WAL
// after its promotion, never a stale gossip entry from before).
func (w *primaryWatch) observe(st ClusterState, token uint64, pos Position) {
	if !st.Bootstrapped || token == 0 || token != st.Token || !pos.Known() || !pos.TokenKnown || pos.Token != token {
		return
	}
	if !w.seen || w.token != token || pos.LSN > w.pos.LSN {
		*w = primaryWatch{token: token, pos: pos, seen: true}
	}
}

// last is the highest position seen under token, nil when none was.
func (w *primaryWatch) last(token uint64) *Position {
	if !w.seen || w.token != token {
		return nil
	}
	p := w.pos
	return &p
}

// checkSwitchover refuses a switchover request that cannot apply.
func checkSwitchover(st ClusterState, members []uint64, to uint64) error {
	switch {
	case !st.Bootstrapped || st.Primary == 0:
		return fmt.Errorf("%w: no primary yet", ErrRejected)
	case st.Maintenance:
		return fmt.Errorf("%w: maintenance mode is on", ErrRejected)
	case to != 0 && to == st.Primary:
		return fmt.Errorf("%w: node %d is already the primary", ErrRejected, to)
	case to != 0 && !slices.Contains(members, to):
		return fmt.Errorf("%w: node %d is not a member", ErrRejected, to)
	case st.Switchover != nil:
		return fmt.Errorf("%w: a switchover to node %d is already pending", ErrRejected, st.Switchover.To)
	}
	return nil
}

// checkFailover refuses a manual failover request that cannot apply.
func checkFailover(st ClusterState, members []uint64, to uint64) error {
	switch {
	case !st.Bootstrapped:
		return fmt.Errorf("%w: no primary yet", ErrRejected)
	case to == st.Primary:
		return fmt.Errorf("%w: node %d is already the primary", ErrRejected, to)
	case !slices.Contains(members, to):
		return fmt.Errorf("%w: node %d is not a member", ErrRejected, to)
	}
	return nil
}

// checkDetached refuses a detach or attach request that cannot apply.
func checkDetached(st ClusterState, members []uint64, id uint64, on bool) error {
	switch {
	case !slices.Contains(members, id):
		return fmt.Errorf("%w: node %d is not a member", ErrRejected, id)
	case on && id == st.Primary:
		return fmt.Errorf("%w: node %d is the primary; only a replica can be detached", ErrRejected, id)
	}
	return nil
}
