package election

import (
	"fmt"
	"slices"
	"time"
)

// The coordinator is whichever node is raft leader. It runs one failover
// at a time, for the applied token:
//
//	revoking   → send Revoke{token} to every voter until a quorum answered
//	waiting    → until the longest reported remaining grant has passed
//	collecting → ask every member for its position; choose
//	proposed   → Promote{token+1} proposed; wait for it to apply
//
// Leaving leadership drops the failover; the next leader starts over (the
// revocations already made are durable, so it finds them again at once).
// What makes the next leader start at all, when its detector has no reason
// to (the old primary is up and gossips healthy), is the revocation
// itself: the old primary, refused as revoked by a quorum, releases its
// token (Node.onRevokedRefusal), and a leader that has itself revoked the
// applied token resumes the failover (resumeRevoked). See doc.go.

type failoverPhase int

const (
	phaseRevoking failoverPhase = iota
	phaseWaiting
	phaseCollecting
	phaseProposed
)

func (p failoverPhase) String() string {
	return [...]string{"revoking", "waiting", "collecting", "proposed"}[p]
}

type failover struct {
	token     uint64
	old       uint64
	reason    string
	phase     failoverPhase
	released  bool
	revoked   map[uint64]time.Duration // voter → our-clock end of its grants
	waitUntil time.Duration
	positions map[uint64]Candidate
	asked     time.Duration
	lastSend  time.Duration
	proposed  uint64
	retryAt   time.Duration
	waiting   string
	// final: the old primary stopped cleanly with its last WAL record
	// here (a switchover); only a replica beyond it is promoted.
	final *Position
	// started: when the failover began (a switchover's named target is
	// preferred for a while, then any replica beyond final will do).
	started time.Duration
	// manual: an operator asked for it (ClusterState.ManualFailover); it
	// goes on in maintenance mode.
	manual bool
}

// ReportPrimaryFailed is the detector's verdict that the current primary
// failed. Only the coordinator acts on it; elsewhere it is ignored.
func (n *Node) ReportPrimaryFailed(reason string) {
	if !n.IsLeader() || !n.state.Bootstrapped {
		return
	}
	n.startFailover(n.state.Token, reason, false)
	n.drainLocal()
}

// ObservePrimary records that the primary named under token was seen
// (gossip) at pos; see ChooseInput.PrimaryLast.
func (n *Node) ObservePrimary(token uint64, pos Position) {
	n.primarySeen.observe(n.state, token, pos)
}

// FailoverPhase describes the coordinator's failover, for the status API.
func (n *Node) FailoverPhase() string {
	if n.coord == nil {
		return ""
	}
	s := fmt.Sprintf("%s token=%d old=%d", n.coord.phase, n.coord.token, n.coord.old)
	if n.coord.waiting != "" && n.coord.phase == phaseCollecting {
		s += " (" + n.coord.waiting + ")"
	}
	return s
}

func (n *Node) startFailover(token uint64, reason string, released bool) {
	if token != n.state.Token {
		return
	}
	manual := n.manualFailover() != nil
	if n.state.Maintenance && !manual {
		if n.suppressed != [2]any{token, reason} { // a re-announced release must not flood the log
			n.suppressed = [2]any{token, reason}
			n.event("failover-suppressed", "maintenance mode: "+reason)
		}
		return
	}
	if f := n.coord; f != nil && f.token == token {
		if released && !f.released {
			f.released = true
			n.event("failover", fmt.Sprintf("token %d: old primary released, no lease wait", token))
		}
		return
	}
	n.coord = &failover{token: token, old: n.state.Primary, reason: reason, released: released, revoked: map[uint64]time.Duration{}, positions: map[uint64]Candidate{}, lastSend: -1, started: n.now, manual: manual}
	n.event("failover", fmt.Sprintf("token %d (primary %d): %s; revoking", token, n.state.Primary, reason))
	n.coordinate()
}

func (n *Node) onRevoked(m Message) {
	f := n.coord
	if f == nil || m.Token != f.token || !n.state.IsVoter(m.From) {
		return
	}
	if _, dup := f.revoked[m.From]; dup {
		return
	}
	f.revoked[m.From] = n.now + WaitFor(n.cfg.Lease, m.Remaining)
	n.coordinate()
}

func (n *Node) onPosition(m Message) {
	f := n.coord
	if f == nil || f.phase != phaseCollecting || m.Token != f.token || m.Candidate.ID != m.From {
		return
	}
	f.positions[m.From] = *m.Candidate
	n.coordinate()
}

// resumeRevoked: a leader whose own grantor has revoked (or seen
// released) the applied token resumes the failover for it. A revocation
// is only ever made by a coordinator that decided to fail that token
// over; if that coordinator lost leadership before promoting anyone, the
// decision stands and this leader finishes it. (The token cannot be
// renewed through this voter anyway.)
func (n *Node) resumeRevoked() {
	st := &n.state
	if n.coord != nil || !st.Bootstrapped || st.Maintenance || st.Token == 0 || !n.IsLeader() {
		return
	}
	if n.grantor.Revoked() < st.Token {
		return
	}
	n.startFailover(st.Token, fmt.Sprintf("resuming: token %d is revoked (an earlier coordinator revoked it, or its primary released it)", st.Token), false)
}

// syncFor is the synchronous setup to choose under (see the shared
// syncFor).
func (n *Node) syncFor(old uint64) SyncState { return syncFor(n.state, n.members(), old) }

// coordinate advances the failover as far as it can at n.now.
func (n *Node) coordinate() {
	n.resumeRevoked()
	n.startManual()
	f := n.coord
	if f == nil {
		return
	}
	switch {
	case !n.IsLeader():
		n.event("failover-abandoned", fmt.Sprintf("token %d: no longer the raft leader", f.token))
		n.coord = nil
		return
	case n.state.Token != f.token:
		n.event("failover-done", fmt.Sprintf("token %d → %d, primary %d", f.token, n.state.Token, n.state.Primary))
		n.coord = nil
		return
	case n.state.Maintenance && !f.manual:
		n.event("failover-abandoned", fmt.Sprintf("token %d: maintenance mode", f.token))
		n.coord = nil
		return
	}
	resend := f.lastSend < 0 || n.now-f.lastSend >= n.cfg.Lease.RenewInterval
	if f.phase == phaseRevoking {
		if len(f.revoked) >= n.state.Quorum() {
			f.waitUntil = 0
			for _, w := range f.revoked {
				f.waitUntil = max(f.waitUntil, w)
			}
			f.phase = phaseWaiting
			n.event("failover", fmt.Sprintf("token %d revoked by %d voters; waiting until %v", f.token, len(f.revoked), f.waitUntil))
		} else if resend {
			f.lastSend = n.now
			for _, v := range n.state.Voters {
				if _, ok := f.revoked[v]; !ok {
					n.send(Message{Type: MsgRevoke, To: v, Token: f.token})
				}
			}
		}
	}
	if f.phase == phaseWaiting && (n.now >= f.waitUntil || f.released) {
		// A release (from the old primary itself, sent after it fenced)
		// ends its lease at once: nothing left to wait for.
		f.phase = phaseCollecting
		f.lastSend = -1
		clear(f.positions)
		if n.now >= f.waitUntil {
			n.event("failover", fmt.Sprintf("token %d: old lease expired; collecting positions", f.token))
		} else {
			n.event("failover", fmt.Sprintf("token %d: old primary released its lease; collecting positions", f.token))
		}
	}
	if f.phase == phaseCollecting {
		members := n.members()
		if f.lastSend < 0 {
			if n.now < f.retryAt {
				return
			}
			f.lastSend, f.asked = n.now, n.now
			// The old primary is asked too: if it is back, fenced with its
			// history intact, it may be promoted again (Choose, reclaim).
			for _, id := range members {
				n.send(Message{Type: MsgPositionRequest, To: id, Token: f.token})
			}
			return // answers (even our own) arrive through handle
		}
		all := true
		for _, id := range members {
			if _, ok := f.positions[id]; !ok && id != f.old {
				all = false
			}
		}
		if !all && n.now-f.asked < n.cfg.PositionTimeout {
			return
		}
		cands := make([]Candidate, 0, len(f.positions))
		for _, c := range f.positions {
			// The replicated detach wins over what the node says.
			c.Detached = c.Detached || slices.Contains(n.state.Detached, c.ID)
			cands = append(cands, c)
		}
		slices.SortFunc(cands, func(a, b Candidate) int { return int(a.ID) - int(b.ID) })
		in := ChooseInput{Candidates: cands, Exclude: f.old, Sync: n.syncFor(f.old), MaximumLagOnFailover: n.maximumLag(), PrimaryLast: n.primarySeen.last(f.token), After: f.final}
		if sw := n.state.Switchover; sw != nil && sw.From == f.old && sw.To != 0 && n.now-f.started < switchoverTargetWait(n.cfg) {
			in.Target = sw.To
		}
		if mf := n.manualFailover(); mf != nil {
			in.Target = mf.To
			if mf.AllowDataLoss {
				in.Sync, in.MaximumLagOnFailover = SyncState{}, 0
			} else {
				in.RequireBest = true
			}
		}
		ch := Choose(in)
		if !ch.OK {
			if ch.Reason != f.waiting {
				f.waiting = ch.Reason
				n.event("failover-waiting", fmt.Sprintf("token %d: %s", f.token, ch.Reason))
			}
			retry := n.cfg.PositionTimeout
			if f.final != nil {
				// A switchover waits for replicas to receive the old
				// primary's last record, which takes milliseconds: ask
				// again soon, the outage is running.
				retry = min(retry, 2*n.cfg.TickInterval)
			}
			f.lastSend, f.retryAt = -1, n.now+retry // ask again later
			clear(f.positions)
			return
		}
		c := ch.Candidate
		err := n.Propose(Command{Type: CmdPromote, Promote: &PromoteCmd{
			Token: f.token + 1, New: c.ID, Old: f.old, Reason: f.reason,
			Timeline: c.Position.Timeline, LSN: c.Position.LSN, At: n.now, Time: n.wallNow,
			Reclaim: c.ID == f.old,
		}})
		if err != nil {
			n.event("failover-waiting", fmt.Sprintf("token %d: propose: %v", f.token, err))
			f.lastSend, f.retryAt = -1, n.now+n.cfg.PositionTimeout
			clear(f.positions)
			return
		}
		f.phase, f.proposed, f.asked = phaseProposed, c.ID, n.now
		n.event("failover", fmt.Sprintf("token %d: proposing node %d as primary under token %d: %s", f.token, c.ID, f.token+1, ch.Reason))
		return
	}
	if f.phase == phaseProposed && n.now-f.asked >= 2*n.cfg.PositionTimeout {
		// Not applied in time (proposal lost, or the candidate vanished):
		// choose again under the same revoked token.
		f.phase, f.lastSend = phaseCollecting, -1
		clear(f.positions)
		n.event("failover", fmt.Sprintf("token %d: promotion of %d not applied; choosing again", f.token, f.proposed))
		n.coordinate()
	}
}

// maximumLag is maximum_lag_on_failover (see the shared maximumLag).
func (n *Node) maximumLag() uint64 { return maximumLag(n.state, n.cfg.MaximumLagOnFailover) }

// manualFailover is the pending manual failover of the applied token.
func (n *Node) manualFailover() *FailoverCmd {
	if mf := n.state.ManualFailover; mf != nil && mf.Token == n.state.Token {
		return mf
	}
	return nil
}

// startManual starts (or marks manual) the failover an operator asked for.
func (n *Node) startManual() {
	mf := n.manualFailover()
	if mf == nil || !n.IsLeader() || !n.state.Bootstrapped {
		return
	}
	if f := n.coord; f != nil {
		f.manual = true
		return
	}
	reason := fmt.Sprintf("manual failover to %d", mf.To)
	if mf.AllowDataLoss {
		reason += " (data loss allowed)"
	}
	n.startFailover(mf.Token, reason, false)
}

// switchoverTargetWait is how long a switchover waits for its named
// target to qualify before any replica beyond the old primary's final
// position will do (the old primary has already stopped: waiting longer
// only prolongs the outage).
func switchoverTargetWait(c Config) time.Duration { return 4 * c.PositionTimeout }

// members lists voters and learners.
func (n *Node) members() []uint64 {
	return sortedUnique(append(slices.Clone(n.state.Voters), n.state.Learners...))
}
