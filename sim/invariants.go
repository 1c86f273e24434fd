package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/ramd/ramd/election"
)

// Invariant names, as reported in a Violation.
const (
	InvTwoWriters     = "two-writers"      // (1) two nodes could acknowledge a write at once
	InvTokenOrder     = "token-order"      // (2) tokens and promotions
	InvAckedWriteLost = "acked-write-lost" // (3) sync mode: acknowledged write missing on the next primary
	InvStaleLease     = "stale-lease"      // (4) an older token's lease valid after a newer token applied
	InvLiveness       = "liveness"         // (5) no writable primary although a majority was fine long enough
	InvWire           = "wire"             // a message did not survive Encode/DecodeMessage
	InvPanic          = "panic"            // the code under test panicked (e.g. raft found its log corrupted)
)

// Violation is the first invariant broken in a run.
type Violation struct {
	At        time.Duration
	Invariant string
	Detail    string
}

func (v Violation) String() string { return fmt.Sprintf("%v: %s: %s", v.At, v.Invariant, v.Detail) }

// invState is what the invariants remember across steps.
type invState struct {
	// committed maps a token to the node a committed Bootstrap/Promote
	// named (as applied by any node).
	committed map[uint64]uint64
	// maxApplied is the highest token applied anywhere.
	maxApplied uint64
	// ackToken is the token of the newest acknowledged write.
	ackToken uint64
	// acked maps acknowledged write ids to the token they were acked under.
	acked     map[uint64]uint64
	ackedList []uint64
	// checkedToken: acknowledged writes were compared with the WAL of
	// the first writer under this token.
	checkedToken uint64
	// stableSince: since when the cluster has been healed (no cut, no
	// pause, a majority of voters up); -1 when it is not.
	stableSince time.Duration
}

func (s *sim) fail(inv, detail string) {
	if s.violation != nil {
		return
	}
	s.violation = &Violation{At: s.now, Invariant: inv, Detail: detail}
	s.record(0, "VIOLATION", inv+": "+detail)
}

// onApplied: (2) one token, one node, across every replica.
func (s *sim) onApplied(n *simNode, ap election.Applied) {
	if ap.Err != nil {
		return
	}
	var tok, who uint64
	switch c := ap.Command; c.Type {
	case election.CmdBootstrap:
		tok, who = 1, c.Bootstrap.Primary
	case election.CmdPromote:
		tok, who = c.Promote.Token, c.Promote.New
	default:
		return
	}
	if prev, ok := s.inv.committed[tok]; ok && prev != who {
		s.fail(InvTokenOrder, fmt.Sprintf("n%d applied token %d for node %d, another replica applied it for node %d", n.id, tok, who, prev))
	}
	s.inv.committed[tok] = who
}

// checkPromoteBacked: (2) every promotion is backed by a committed entry.
func (s *sim) checkPromoteBacked(n *simNode, tok uint64) {
	if who, ok := s.inv.committed[tok]; !ok || who != n.id {
		s.fail(InvTokenOrder, fmt.Sprintf("n%d told to promote under token %d, but the committed entry names %d (found %v)", n.id, tok, who, ok))
	}
}

// onState: tokens never go back on one node; (4) when a newer token is
// applied anywhere, no older token's lease may still be valid.
func (s *sim) onState(n *simNode, st election.ClusterState) {
	if st.Token < n.applied {
		s.fail(InvTokenOrder, fmt.Sprintf("n%d applied token %d after %d", n.id, st.Token, n.applied))
	}
	n.applied = max(n.applied, st.Token)
	if st.Token > s.inv.maxApplied {
		old := s.inv.maxApplied
		s.inv.maxApplied = st.Token
		s.record(n.id, "token", fmt.Sprintf("token %d (primary %d) applied first here", st.Token, st.Primary))
		if old != 0 {
			s.onNewToken(st.Token, s.inv.committed[old])
		}
		s.checkStaleLeases()
	}
}

func (s *sim) checkStaleLeases() {
	for _, o := range s.nodes {
		if o.leaseToken != 0 && o.leaseToken < s.inv.maxApplied && o.leaseValidAt(s.now) {
			s.fail(InvStaleLease, fmt.Sprintf("token %d is applied, yet n%d still holds its lease for token %d until %v (its clock reads %v)",
				s.inv.maxApplied, o.id, o.leaseToken, o.node.LeaseExpiry(), o.clock.at(s.now)))
		}
	}
}

// checkStep runs after every simulation step.
func (s *sim) checkStep() {
	var writers []uint64
	for _, n := range s.nodes {
		if n.canAck(s.now) {
			writers = append(writers, n.id)
		}
	}
	if len(writers) > 1 {
		s.fail(InvTwoWriters, fmt.Sprintf("nodes %v could all acknowledge a write", writers))
	}
	s.trackOutages(len(writers) > 0)
	s.checkStaleLeases()
	// (5) liveness.
	stable := !s.net.anyCut()
	up := 0
	for _, n := range s.nodes {
		if n.up && n.paused(s.now) {
			stable = false
		}
		if n.up && slices.Contains(s.founders, n.id) {
			up++
		}
	}
	stable = stable && up >= len(s.founders)/2+1
	if s.db != nil {
		stable = s.pglockStable()
	}
	switch {
	case !stable:
		s.inv.stableSince = -1
	case s.inv.stableSince < 0:
		s.inv.stableSince = s.now
	case len(writers) > 0:
		s.inv.stableSince = s.now // satisfied: restart the window
	case s.now-s.inv.stableSince > s.cfg.LivenessBound:
		if s.db != nil {
			s.fail(InvLiveness, fmt.Sprintf("the coordination database and a healthy replica reachable for %v (%d nodes up), and no node can acknowledge a write", s.cfg.LivenessBound, up))
			break
		}
		s.fail(InvLiveness, fmt.Sprintf("healed with %d voters up for %v, and no node can acknowledge a write", up, s.cfg.LivenessBound))
	}
}

// onAck records an acknowledged write; (2) acknowledgements never go back
// to an older token; (3) the first writer under a new token holds every
// write acknowledged before.
func (s *sim) onAck(n *simNode, id uint64) {
	tok := n.leaseToken
	if tok < s.inv.ackToken {
		s.fail(InvTokenOrder, fmt.Sprintf("n%d acknowledged write %d under token %d after one under token %d", n.id, id, tok, s.inv.ackToken))
	}
	if tok > s.inv.checkedToken {
		s.inv.checkedToken = tok
		have := make(map[uint64]bool, len(n.pg.wal))
		for _, r := range n.pg.wal {
			have[r.id] = true
		}
		missing := 0
		first := uint64(0)
		for _, w := range s.inv.ackedList {
			if s.inv.acked[w] < tok && !have[w] {
				missing++
				if first == 0 {
					first = w
				}
			}
		}
		if missing > 0 {
			s.res.LostWrites += missing
			if s.cfg.Sync {
				s.fail(InvAckedWriteLost, fmt.Sprintf("n%d writes under token %d but lacks %d acknowledged writes (first: write %d under token %d)", n.id, tok, missing, first, s.inv.acked[first]))
			}
			s.inv.ackedList = slices.DeleteFunc(s.inv.ackedList, func(w uint64) bool { return !have[w] })
		}
	}
	s.inv.ackToken = max(s.inv.ackToken, tok)
	s.inv.acked[id] = tok
	s.inv.ackedList = append(s.inv.ackedList, id)
	s.res.Acked++
}

// pglockStable is the liveness premise of the pglock backend: the
// coordination database answers promptly, nothing is cut or frozen, and
// a healthy replica (a running, idle standby) or a writable primary is
// up. Synchronous mode also needs a majority of the nodes up, as with the
// quorum backend: the coordinator must hear from enough standbys to know
// it holds every acknowledged write (see election.Choose).
func (s *sim) pglockStable() bool {
	if !s.db.healthy(s.now) || s.net.anyCut() {
		return false
	}
	up, healthy := 0, 0
	for _, n := range s.nodes {
		if n.up && n.paused(s.now) {
			return false
		}
		if n.up {
			up++
			if n.pg.role == pgStandby && !n.pg.busy() || n.canAck(s.now) {
				healthy++
			}
		}
	}
	if healthy == 0 {
		return false
	}
	return !s.cfg.Sync || up >= len(s.nodes)/2+1
}

// trackOutages records the stretches without a writable node, from the
// first writable instant on (Result.Outages).
func (s *sim) trackOutages(writable bool) {
	o := s.res.Outages
	switch {
	case writable && len(o) > 0 && o[len(o)-1].To < 0:
		o[len(o)-1].To = s.now
	case !writable && s.everWritable && (len(o) == 0 || o[len(o)-1].To >= 0):
		s.res.Outages = append(o, Outage{From: s.now, To: -1})
	}
	s.everWritable = s.everWritable || writable
}
