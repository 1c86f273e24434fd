package election

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ramd/ramd/mesh"
)

// Position is a WAL position: how far a node's WAL goes, and on which
// history.
//
// Two orders exist. With a writer token on both sides (TokenKnown), a
// position orders by (Token, LSN), the way raft orders logs by the term
// and index of their last entry: a token names exactly one primary, whose
// WAL only grows while it writes under that token, so two WALs that end
// on records written under the same token at the same LSN are the same
// history, and a WAL whose last record was written under a newer token
// holds everything the newer primary was chosen with. Without tokens,
// positions order by (Timeline, LSN). That is the fallback for reporters
// that cannot tell the token: PostgreSQL picks a new timeline number
// locally (the newest it knows + 1), so after a split two branches can
// carry the same number, or an older branch a higher one, and
// (Timeline, LSN) can rank a divergent WAL above the one holding the
// acknowledged commits. Choose uses the token order only when every
// known position carries a token.
//
// A Timeline of 0 means "unknown" (PostgreSQL's timelines start at 1; the
// daemon reports 0 when it could not measure its server, a restarted node
// answers 0 before its first measurement): such a report is no evidence
// of where the WAL ends, so Choose neither promotes it nor counts it
// towards the reports a synchronous choice waits for.
type Position struct {
	Timeline uint32 `json:"timeline"`
	LSN      uint64 `json:"lsn"`
	// Token is the fencing token under which the primary that wrote this
	// WAL's last record (at LSN) was promoted: the token of the history
	// the WAL ends on. 0 is the bootstrap primary's WAL from before token
	// 1. Meaningful only when TokenKnown is set.
	Token      uint64 `json:"token,omitempty"`
	TokenKnown bool   `json:"token_known,omitempty"`
}

// Known reports whether the position was measured (Timeline != 0).
func (p Position) Known() bool { return p.Timeline != 0 }

// Compare orders positions: by (Token, LSN) when both carry a writer
// token, else by (Timeline, LSN). Mixing the two orders is not
// transitive; Choose never mixes them (it drops the tokens unless every
// known position has one).
func (p Position) Compare(o Position) int {
	if p.TokenKnown && o.TokenKnown {
		if c := cmp.Compare(p.Token, o.Token); c != 0 {
			return c
		}
		return cmp.Compare(p.LSN, o.LSN)
	}
	if c := cmp.Compare(p.Timeline, o.Timeline); c != 0 {
		return c
	}
	return cmp.Compare(p.LSN, o.LSN)
}

func (p Position) String() string {
	if p.TokenKnown {
		return fmt.Sprintf("%d/%X (token %d)", p.Timeline, p.LSN, p.Token)
	}
	return fmt.Sprintf("%d/%X", p.Timeline, p.LSN)
}

// Candidate is one node's answer to a PositionRequest (or, for a first
// look, its gossiped state).
type Candidate struct {
	ID uint64
	// Alive: the node answered (or SWIM says alive).
	Alive bool
	// Healthy: its PostgreSQL runs as a healthy replica.
	Healthy bool
	// Position is its last received (flushed) WAL position.
	Position Position
	// Priority: higher is preferred among equal positions (tag priority).
	Priority int
	// NoFailover: tag nofailover=true; never promoted.
	NoFailover bool
	// Detached: not following the cluster (cloning, another system id).
	Detached bool
	// FencedPrimary: the old primary, back and fenced with its history
	// intact (Local.FencedPrimary).
	FencedPrimary bool
}

// CandidateFromMember builds a Candidate from gossip.
func CandidateFromMember(m mesh.Member) Candidate {
	prio, _ := strconv.Atoi(m.State.Tags["priority"])
	return Candidate{
		ID:         uint64(max(m.State.NodeID, 0)),
		Alive:      m.Liveness == mesh.Alive,
		Healthy:    m.State.Healthy && m.State.PGRunning && m.State.Role == mesh.RoleReplica,
		Position:   Position{Timeline: m.State.Timeline, LSN: m.State.LSN, Token: m.State.WriterToken, TokenKnown: m.State.WriterTokenKnown},
		Priority:   prio,
		NoFailover: strings.EqualFold(m.State.Tags["nofailover"], "true"),
		Detached:   m.State.DataState != "" && m.State.DataState != mesh.DataReady,
	}
}

// SyncMode mirrors synchronous_mode.
type SyncMode string

const (
	SyncOff    SyncMode = ""
	SyncQuorum SyncMode = "quorum"
	SyncStrict SyncMode = "strict"
)

// SyncState is the synchronous replication setup the old primary ran with:
// commits were acknowledged once NumSync of Members had flushed them.
//
// In ClusterState (and Config.Sync, BootstrapCmd, SetSync) an empty
// Members means "every member of the cluster (voters and learners) except
// the primary": the primary lists all its standbys in
// synchronous_standby_names (ANY k (...)). The coordinator resolves it
// when it chooses (syncFor).
type SyncState struct {
	Mode    SyncMode `json:"mode,omitempty"`
	Members []uint64 `json:"members,omitempty"`
	NumSync int      `json:"num_sync,omitempty"`
	// Token, on a SetSync command, is the fencing token of the primary
	// that proposed it: the command is refused if another primary has
	// taken over by the time it commits (its set described the old
	// primary's standbys). Not kept in ClusterState.
	Token uint64 `json:"token,omitempty"`
	// Version counts the SetSync commands applied so far (in
	// ClusterState). On a SetSync command it is the version the proposal
	// was based on: it applies only if no other SetSync applied since
	// (compare-and-swap), so that a late or repeated proposal never
	// replaces a newer setting. See PlanSync.
	Version uint64 `json:"version,omitempty"`
}

// Enabled reports whether the mode bounds acknowledged commits (quorum or
// strict).
func (s SyncState) Enabled() bool { return s.Mode == SyncQuorum || s.Mode == SyncStrict }

func (s SyncState) validate() error {
	switch {
	case s.Mode != SyncOff && !s.Enabled():
		return fmt.Errorf("%w: unknown synchronous mode %q", ErrMalformedCommand, s.Mode)
	case s.NumSync < 0:
		return fmt.Errorf("%w: synchronous num_sync %d", ErrMalformedCommand, s.NumSync)
	case slices.Contains(s.Members, 0):
		return fmt.Errorf("%w: synchronous member 0", ErrMalformedCommand)
	}
	return nil
}

// normalized sorts Members, defaults NumSync to 1, and clears everything
// when the mode is off.
func (s SyncState) normalized() SyncState {
	if !s.Enabled() {
		return SyncState{}
	}
	return SyncState{Mode: s.Mode, Members: sortedUnique(s.Members), NumSync: max(s.NumSync, 1)}
}

func (s SyncState) String() string {
	if !s.Enabled() {
		return "off"
	}
	m := "all"
	if len(s.Members) > 0 {
		m = fmt.Sprint(s.Members)
	}
	return fmt.Sprintf("%s k=%d members=%s", s.Mode, max(s.NumSync, 1), m)
}

// ChooseInput is everything Choose looks at.
type ChooseInput struct {
	// Candidates are the reported positions (the old primary excluded or
	// listed in Exclude).
	Candidates []Candidate
	// Exclude is never chosen (the failed primary).
	Exclude uint64
	// MaximumLagOnFailover (bytes): a candidate further than this behind
	// the best known position is excluded. 0 disables the check.
	MaximumLagOnFailover uint64
	// PrimaryLast, when set, is the highest position the failed primary
	// was seen at (its gossiped state): in asynchronous mode a candidate
	// more than MaximumLagOnFailover bytes behind it is excluded too, as
	// in Patroni, so that a failover loses at most that much WAL plus what
	// the primary wrote after it was last seen. It bounds automatic
	// failovers only: ignored with After (a switchover has the old
	// primary's final record) or Target (a switchover's or an operator's
	// choice), and in the synchronous modes (their bar already keeps every
	// acknowledged commit).
	PrimaryLast *Position
	// AllowLaggard: if every otherwise eligible candidate lags too much,
	// take the best of them anyway (availability over freshness).
	AllowLaggard bool
	// Sync is the old primary's synchronous replication setup.
	Sync SyncState
	// Target restricts the choice to one node (switchover to a named node).
	Target uint64
	// RequireBest: a candidate behind the most advanced reported one is
	// not eligible (a manual failover that must not lose what another
	// replica holds).
	RequireBest bool
	// After, when set, is where the old primary's last WAL record starts
	// (it stopped cleanly, for a switchover): a candidate must be beyond it,
	// on its timeline, to hold every commit.
	After *Position
}

// Choice is Choose's outcome.
type Choice struct {
	OK        bool
	Candidate Candidate
	// Reason says why this one, or, when !OK, starts with "waiting: ".
	Reason string
}

// Choose picks the node to promote.
//
// Eligible: alive, healthy, not tagged nofailover, not detached, not
// Exclude, and Target if one is set. Among the eligible, the highest
// position wins, then the higher priority, then the lower node id.
//
// Lag: the best known position is the highest position any alive candidate
// reported (eligible or not). Candidates more than MaximumLagOnFailover
// behind it are dropped, unless none remains and AllowLaggard is set. In
// asynchronous mode so are candidates more than MaximumLagOnFailover
// behind PrimaryLast, the failed primary's last seen position: when every
// replica lags that much, nothing is promoted automatically (the choice
// waits, saying so) rather than lose more than the operator allowed — as
// Patroni and Stolon do; a manual failover promotes one anyway.
//
// Reclaim: when no replica qualifies, for any reason, and the failed
// primary itself is back (a candidate with ID Exclude and FencedPrimary),
// it is chosen again in an automatic failover: nothing is lost (see
// reclaimable).
//
// Synchronous modes. With Sync.Mode quorum or strict, a commit was
// acknowledged to a client only after NumSync (k) of the n Members flushed
// it. Any n-k+1 members include at least one of those k, so once n-k+1
// members have reported a known position, the highest position among them
// (the bar) is at least every acknowledged commit. A candidate qualifies
// only at or above the bar; with fewer than n-k+1 known reports nobody
// qualifies yet ("waiting"). Strict differs from quorum only on the
// primary's side (it refuses writes without k standbys), so the rule here
// is the same.
//
// "At least every acknowledged commit" needs an order in which a higher
// position holds what a lower one on the acknowledged history holds: the
// (Token, LSN) order has that property across divergent histories, the
// (Timeline, LSN) fallback only when timeline numbers are never reused
// (see Position). Unknown positions (Timeline 0) are never chosen and
// never counted.
func Choose(in ChooseInput) Choice {
	in.Candidates = oneOrder(in.Candidates)
	seen := in.PrimaryLast // also where a reclaimed primary is at least
	if in.After != nil || in.Target != 0 || in.Sync.Enabled() {
		in.PrimaryLast = nil
	}
	reclaim := reclaimable(in)
	var best Position
	for _, c := range in.Candidates {
		if c.Alive && c.ID != in.Exclude && c.Position.Known() && c.Position.Compare(best) > 0 {
			best = c.Position
		}
	}
	var bar Position
	if in.Sync.Enabled() {
		members := sortedUnique(in.Sync.Members)
		k := min(max(in.Sync.NumSync, 1), len(members))
		need := len(members) - k + 1
		got := 0
		for _, c := range in.Candidates {
			if _, ok := slices.BinarySearch(members, c.ID); ok && c.Alive && c.ID != in.Exclude && c.Position.Known() {
				got++
				if c.Position.Compare(bar) > 0 {
					bar = c.Position
				}
			}
		}
		if len(members) == 0 || got < need {
			why := fmt.Sprintf("%d of %d synchronous standbys reported, need %d to know every acknowledged commit", got, len(members), need)
			if reclaim != nil {
				return reclaimChoice(*reclaim, seen, why)
			}
			return Choice{Reason: "waiting: " + why}
		}
	}

	var eligible, laggards []Candidate
	var skipped []string
	for _, c := range in.Candidates {
		why := ""
		switch {
		case c.ID == in.Exclude:
			why = "old primary"
		case in.Target != 0 && c.ID != in.Target:
			continue
		case !c.Alive:
			why = "not alive"
		case !c.Healthy:
			why = "not healthy"
		case c.NoFailover:
			why = "nofailover"
		case c.Detached:
			why = "detached"
		case !c.Position.Known():
			why = "position unknown"
		case c.Position.Compare(bar) < 0:
			why = fmt.Sprintf("at %v, below the synchronous bar %v", c.Position, bar)
		case in.RequireBest && c.Position.Compare(best) < 0:
			why = fmt.Sprintf("at %v, behind the most advanced replica at %v", c.Position, best)
		case in.After != nil && c.Position.Compare(*in.After) <= 0:
			why = fmt.Sprintf("at %v, not beyond the old primary's final record at %v", c.Position, *in.After)
		}
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("%d: %s", c.ID, why))
			continue
		}
		if in.MaximumLagOnFailover > 0 && lag(best, c.Position) > in.MaximumLagOnFailover {
			laggards = append(laggards, c)
			skipped = append(skipped, fmt.Sprintf("%d: %d bytes behind %v", c.ID, lag(best, c.Position), best))
			continue
		}
		if p := in.PrimaryLast; p != nil && in.MaximumLagOnFailover > 0 && lag(*p, c.Position) > in.MaximumLagOnFailover {
			laggards = append(laggards, c)
			skipped = append(skipped, fmt.Sprintf("%d: %d bytes behind the failed primary's last seen position %v (maximum_lag_on_failover %d; a manual failover promotes it anyway)",
				c.ID, lag(*p, c.Position), *p, in.MaximumLagOnFailover))
			continue
		}
		eligible = append(eligible, c)
	}
	if len(eligible) == 0 && reclaim != nil && !(in.AllowLaggard && len(laggards) > 0) {
		slices.Sort(skipped)
		return reclaimChoice(*reclaim, seen, "no replica qualifies ("+strings.Join(skipped, "; ")+")")
	}
	note := ""
	if len(eligible) == 0 && in.AllowLaggard && len(laggards) > 0 {
		eligible, note = laggards, " (lagging, allowed)"
	}
	if len(eligible) == 0 {
		slices.Sort(skipped)
		return Choice{Reason: "waiting: no eligible candidate (" + strings.Join(skipped, "; ") + ")"}
	}
	w := slices.MinFunc(eligible, betterFirst)
	return Choice{OK: true, Candidate: w, Reason: fmt.Sprintf("node %d at %v priority %d, best of %d%s", w.ID, w.Position, w.Priority, len(eligible), note)}
}

// reclaimable returns the old primary when it may be promoted again: an
// automatic failover (no Target, no switchover's final record), and the
// old primary answered, alive, fenced with its history intact
// (FencedPrimary), not tagged nofailover, not detached. Promoting it again
// under the next token loses nothing — it wrote every commit the replicas
// hold and every one acknowledged, in any synchronous mode — so it is the
// choice whenever no replica qualifies, instead of waiting without a
// primary: the lag rule leaves none, or the replicas cannot report (a
// standby rewound from a source that then died cannot become consistent;
// a chaos finding, docs/benchmarks.md). This is what Patroni gets when a
// failed leader comes back and takes its key again. A replica that
// qualifies is still preferred: the old primary was judged failed.
func reclaimable(in ChooseInput) *Candidate {
	if in.Exclude == 0 || in.Target != 0 || in.After != nil {
		return nil
	}
	for _, c := range in.Candidates {
		if c.ID == in.Exclude && c.FencedPrimary && c.Alive && !c.NoFailover && !c.Detached {
			return &c
		}
	}
	return nil
}

// reclaimChoice chooses the old primary again (see reclaimable).
func reclaimChoice(c Candidate, seen *Position, why string) Choice {
	if !c.Position.Known() && seen != nil {
		c.Position = *seen // it is at least there
	}
	return Choice{OK: true, Candidate: c, Reason: fmt.Sprintf("node %d, the failed primary, is back with its history intact and %s: promoting it again loses nothing", c.ID, why)}
}

// oneOrder returns the candidates with their writer tokens dropped unless
// every known position carries one, so that Choose compares all of them
// in one order: (Token, LSN) when it can, else (Timeline, LSN).
func oneOrder(cs []Candidate) []Candidate {
	for _, c := range cs {
		if c.Position.Known() && !c.Position.TokenKnown {
			out := slices.Clone(cs)
			for i := range out {
				out[i].Position.Token, out[i].Position.TokenKnown = 0, false
			}
			return out
		}
	}
	return cs
}

// betterFirst orders candidates best first.
func betterFirst(a, b Candidate) int {
	if c := b.Position.Compare(a.Position); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// lag is how many bytes p is behind best; a lower timeline with a higher
// LSN is still behind, but by an unknown amount: report the LSN distance
// or 0.
func lag(best, p Position) uint64 {
	if p.LSN >= best.LSN {
		return 0
	}
	return best.LSN - p.LSN
}
