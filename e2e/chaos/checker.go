package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Findings is what the checker derives from a run's records. It is pure:
// Check only reads its inputs.
type Findings struct {
	Attempted, Acked int
	// Lost: acknowledged ids missing from the final table.
	Lost []Op
	// NoFinalRead: the final table could not be read; Lost, InDoubt and
	// Phantom are empty for want of it, not because nothing was lost.
	NoFinalRead bool
	// InDoubt: ids present although their insert failed (timed out,
	// cancelled, connection dropped): legitimate in-flight commits.
	InDoubt []Op
	// Phantom: ids present that no client ever sent (never legitimate).
	Phantom []int64
	// SplitBrain: writes acknowledged by a node whose token is lower
	// than that of a write another node had already acknowledged before
	// this one was sent (Prior is that earlier write).
	SplitBrain []SplitBrain
	// TokenMismatch: acknowledged writes whose token's primary, in the
	// cluster's history, is another node.
	TokenMismatch []Op
	// TokenUnknown: acknowledged writes whose server reported no token.
	TokenUnknown []Op
	// DoublePrimary: instants (from the probe's writes) at which two
	// nodes both accepted a write: two probe inserts on different nodes
	// whose [sent, acknowledged] intervals overlap.
	DoublePrimary []Overlap
	// APIDoublePrimary: probe rounds in which two nodes' /primary
	// answered 200 with overlapping request intervals.
	APIDoublePrimary []Overlap
	// Availability, from the workload clients' acknowledgements (not the
	// probe's).
	// LostWAL estimates, per writer token that lost acknowledged writes,
	// how much WAL the failover after it dropped (async mode's price);
	// LossBound is the run's maximum_lag_on_failover to compare with.
	LostWAL       []LostWAL
	LossBound     uint64
	Outages       []Interval // gaps between consecutive acknowledgements longer than OutageThreshold
	Unavailable   time.Duration
	LongestOutage time.Duration
	Failovers     []Failover
}

// SplitBrain pairs a late write with the earlier higher-token one.
type SplitBrain struct {
	Late, Prior Op
}

// Overlap is two nodes accepting at once.
type Overlap struct {
	A, B     int // node ids
	From, To time.Time
}

// Interval is a span of time.
type Interval struct{ From, To time.Time }

// Failover is one change of fencing token seen by the writes: the last
// write acknowledged under an older token before the first under this
// one.
type Failover struct {
	Token      uint64
	Node       int
	Reason     string
	LastOld    time.Time
	FirstNew   time.Time
	WritePause time.Duration
}

// LostWAL is the WAL a failover dropped from one writer token's history,
// estimated from the acknowledged writes' positions. Under one token the
// WAL is one history, written in order, so every write below a surviving
// one survived too: the history kept reaches at least Kept (the highest
// surviving write's position) and the lost writes lie between it and
// LastLost. Bytes = LastLost - Kept is an upper estimate of the WAL the
// promoted node lacked for those writes. When no write under the token
// survived (NoneKept) the fork point is not known from the writes: Bytes
// then counts from the token's first write and is a lower estimate.
//
// The documented bound (maximum_lag_on_failover, design.md "Choose") is
// on where the failed primary was last seen, and a primary cut off from
// the others goes on acknowledging, unseen, until its lease ends: what it
// wrote in that window is lost in async mode whatever the setting. So the
// check is on Seen, the primary's position LossWindow before its last
// acknowledgement under the token (the last write it could still have
// been seen at): the kept history must reach to within the bound of it.
// Behind is Seen - Kept (0 when the kept history reaches Seen).
type LostWAL struct {
	Token          uint64
	Node           int
	Writes         int
	Kept, LastLost uint64
	Bytes          uint64
	NoneKept       bool
	Seen, Behind   uint64
}

// LossWindow is how long before its last acknowledgement a primary may
// have been last seen by the others: its lease (lease_ttl, 2 s by
// default) plus a health check and a gossip round (0.6 s), rounded up.
const LossWindow = 3 * time.Second

// lostWAL computes the estimate for every token with lost writes.
func lostWAL(acked []Op, lost []Op, portNode map[int]int) []LostWAL {
	isLost := map[int64]bool{}
	for _, op := range lost {
		isLost[op.ID] = true
	}
	type span struct {
		first, kept, last uint64
		writes, node      int
		lastAck           time.Time
	}
	by := map[uint64]*span{}
	for _, op := range acked {
		if sp := by[op.Token]; sp != nil && op.Done.After(sp.lastAck) {
			sp.lastAck = op.Done
		}
		sp := by[op.Token]
		if sp == nil {
			sp = &span{first: op.LSN, lastAck: op.Done}
			by[op.Token] = sp
		}
		sp.first = min(sp.first, op.LSN)
		if isLost[op.ID] {
			sp.writes++
			sp.last = max(sp.last, op.LSN)
			sp.node = portNode[op.Port]
		} else {
			sp.kept = max(sp.kept, op.LSN)
		}
	}
	var out []LostWAL
	for tok, sp := range by {
		if sp.writes == 0 {
			continue
		}
		from := sp.kept
		if from == 0 {
			from = sp.first
		}
		l := LostWAL{Token: tok, Node: sp.node, Writes: sp.writes, Kept: sp.kept, LastLost: sp.last, NoneKept: sp.kept == 0}
		if sp.last > from {
			l.Bytes = sp.last - from
		}
		for _, op := range acked {
			if op.Token == tok && !op.Done.After(sp.lastAck.Add(-LossWindow)) {
				l.Seen = max(l.Seen, op.LSN)
			}
		}
		if l.Seen > sp.kept {
			l.Behind = l.Seen - sp.kept
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out
}

// OutageThreshold: a gap between acknowledged workload writes longer than
// this counts as an outage (clients write every 25 ms each).
const OutageThreshold = time.Second

// CheckInput is what Check reads.
type CheckInput struct {
	Ops     []Op
	Samples []Sample
	// Present is the final table: id → client. NoFinalRead: there is
	// none (no primary at the end); lost, in-doubt and phantom ids are
	// then not computed.
	Present     map[int64]string
	NoFinalRead bool
	History     []History
	// PortNode maps a PostgreSQL port to its node id.
	PortNode map[int]int
	// From, To bound the availability figures (the chaos phase and the
	// recovery after it).
	From, To time.Time
	// FirstToken is the token when the workload started: changes after
	// it are the run's failovers.
	FirstToken uint64
	// LossBound is maximum_lag_on_failover (bytes) for the async
	// lost-WAL check; 0: not checked.
	LossBound uint64
}

// Check derives the findings.
func Check(in CheckInput) Findings {
	f := Findings{NoFinalRead: in.NoFinalRead}
	sent := map[int64]Op{}
	for _, op := range in.Ops {
		f.Attempted++
		sent[op.ID] = op
		if op.OK {
			f.Acked++
			if _, ok := in.Present[op.ID]; !ok && !in.NoFinalRead {
				f.Lost = append(f.Lost, op)
			}
			if op.TokenErr != "" {
				f.TokenUnknown = append(f.TokenUnknown, op)
			}
		}
	}
	for id := range in.Present {
		op, ok := sent[id]
		switch {
		case !ok:
			f.Phantom = append(f.Phantom, id)
		case !op.OK:
			f.InDoubt = append(f.InDoubt, op)
		}
	}
	sort.Slice(f.Phantom, func(i, j int) bool { return f.Phantom[i] < f.Phantom[j] })
	sort.Slice(f.InDoubt, func(i, j int) bool { return f.InDoubt[i].ID < f.InDoubt[j].ID })
	sort.Slice(f.Lost, func(i, j int) bool { return f.Lost[i].ID < f.Lost[j].ID })

	acked := ackedOps(in.Ops)
	f.LostWAL, f.LossBound = lostWAL(acked, f.Lost, in.PortNode), in.LossBound
	f.SplitBrain = splitBrain(acked, in.PortNode)
	primaryOf := map[uint64]int{}
	reason := map[uint64]string{}
	for _, h := range in.History {
		primaryOf[h.FencingToken] = h.New
		reason[h.FencingToken] = h.Reason
	}
	for _, op := range acked {
		if op.TokenErr != "" {
			continue
		}
		if p, ok := primaryOf[op.Token]; ok && p != in.PortNode[op.Port] {
			f.TokenMismatch = append(f.TokenMismatch, op)
		}
	}
	f.DoublePrimary = probeOverlaps(acked, in.PortNode)
	f.APIDoublePrimary = apiOverlaps(in.Samples)

	// Availability over the workload's acknowledgements.
	var work []Op
	for _, op := range acked {
		if !strings.HasPrefix(op.Client, "probe-") && !op.Done.Before(in.From) && !op.Done.After(in.To) {
			work = append(work, op)
		}
	}
	sort.Slice(work, func(i, j int) bool { return work[i].Done.Before(work[j].Done) })
	prev := in.From
	for _, op := range work {
		if gap := op.Done.Sub(prev); gap > OutageThreshold {
			f.Outages = append(f.Outages, Interval{prev, op.Done})
		}
		prev = op.Done
	}
	if gap := in.To.Sub(prev); gap > OutageThreshold {
		f.Outages = append(f.Outages, Interval{prev, in.To})
	}
	for _, o := range f.Outages {
		d := o.To.Sub(o.From)
		f.Unavailable += d
		f.LongestOutage = max(f.LongestOutage, d)
	}

	// Failovers: every token above the first that acknowledged a write.
	firstAck := map[uint64]Op{}
	for _, op := range work {
		if op.TokenErr != "" || op.Token <= in.FirstToken {
			continue
		}
		if a, ok := firstAck[op.Token]; !ok || op.Done.Before(a.Done) {
			firstAck[op.Token] = op
		}
	}
	var tokens []uint64
	for t := range firstAck {
		tokens = append(tokens, t)
	}
	sort.Slice(tokens, func(i, j int) bool { return tokens[i] < tokens[j] })
	for _, t := range tokens {
		first := firstAck[t]
		fo := Failover{Token: t, Node: in.PortNode[first.Port], Reason: reason[t], FirstNew: first.Done}
		for _, op := range work {
			if op.Token < t && op.Done.Before(first.Done) && op.Done.After(fo.LastOld) {
				fo.LastOld = op.Done
			}
		}
		if !fo.LastOld.IsZero() {
			fo.WritePause = fo.FirstNew.Sub(fo.LastOld)
		}
		f.Failovers = append(f.Failovers, fo)
	}
	return f
}

func ackedOps(ops []Op) []Op {
	var out []Op
	for _, op := range ops {
		if op.OK {
			out = append(out, op)
		}
	}
	return out
}

// splitBrain finds every acknowledged write sent after a write with a
// higher token, by another node, had been acknowledged. Comparing the
// later write's send time with the earlier one's acknowledgement is
// conservative: the commits are then certainly ordered, whatever the
// network delays.
func splitBrain(acked []Op, portNode map[int]int) []SplitBrain {
	byDone := append([]Op(nil), acked...)
	sort.Slice(byDone, func(i, j int) bool { return byDone[i].Done.Before(byDone[j].Done) })
	bySent := append([]Op(nil), acked...)
	sort.Slice(bySent, func(i, j int) bool { return bySent[i].Sent.Before(bySent[j].Sent) })
	var out []SplitBrain
	var best, second Op // highest-token acknowledged so far, and the highest from another node than best's
	have, haveSecond := false, false
	j := 0
	for _, op := range bySent {
		if op.TokenErr != "" {
			continue
		}
		for j < len(byDone) && byDone[j].Done.Before(op.Sent) {
			d := byDone[j]
			j++
			if d.TokenErr != "" {
				continue
			}
			switch {
			case !have || d.Token > best.Token:
				if have && portNode[best.Port] != portNode[d.Port] {
					second, haveSecond = best, true
				}
				best, have = d, true
			case portNode[d.Port] != portNode[best.Port] && (!haveSecond || d.Token > second.Token):
				second, haveSecond = d, true
			}
		}
		node := portNode[op.Port]
		switch {
		case have && best.Token > op.Token && portNode[best.Port] != node:
			out = append(out, SplitBrain{Late: op, Prior: best})
		case haveSecond && second.Token > op.Token && portNode[second.Port] != node:
			out = append(out, SplitBrain{Late: op, Prior: second})
		}
	}
	return out
}

// probeOverlaps finds probe writes on two different nodes whose
// [sent, done] intervals overlap.
func probeOverlaps(acked []Op, portNode map[int]int) []Overlap {
	var probes []Op
	for _, op := range acked {
		if strings.HasPrefix(op.Client, "probe-") {
			probes = append(probes, op)
		}
	}
	sort.Slice(probes, func(i, j int) bool { return probes[i].Sent.Before(probes[j].Sent) })
	var out []Overlap
	for i, a := range probes {
		for _, b := range probes[i+1:] {
			if !b.Sent.Before(a.Done) {
				break
			}
			na, nb := portNode[a.Port], portNode[b.Port]
			if na != nb {
				out = append(out, Overlap{A: na, B: nb, From: b.Sent, To: minTime(a.Done, b.Done)})
			}
		}
	}
	return out
}

func apiOverlaps(samples []Sample) []Overlap {
	var yes []Sample
	for _, s := range samples {
		if s.API {
			yes = append(yes, s)
		}
	}
	sort.Slice(yes, func(i, j int) bool { return yes[i].APISent.Before(yes[j].APISent) })
	var out []Overlap
	for i, a := range yes {
		for _, b := range yes[i+1:] {
			if !b.APISent.Before(a.APIDone) {
				break
			}
			if a.Node != b.Node {
				out = append(out, Overlap{A: a.Node, B: b.Node, From: b.APISent, To: minTime(a.APIDone, b.APIDone)})
			}
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Violations lists what makes a run fail: any lost acknowledged write
// (only when lossless is set: synchronous modes), any split-brain write,
// any phantom id, any token mismatch. Each entry is a sentence.
func (f Findings) Violations(lossless bool) []string {
	var v []string
	if f.NoFinalRead {
		v = append(v, "no final read: the cluster had no primary at the end, lost writes could not be checked")
	}
	if lossless && len(f.Lost) > 0 {
		v = append(v, fmt.Sprintf("%d acknowledged writes lost (first: %s)", len(f.Lost), opString(f.Lost[0])))
	}
	for _, l := range f.LostWAL {
		if !lossless && f.LossBound > 0 && l.Behind > f.LossBound {
			v = append(v, fmt.Sprintf("token %d (node %d) lost %d writes: the history kept ends %d bytes before where the primary was %s before it stopped, beyond maximum_lag_on_failover (%d bytes)",
				l.Token, l.Node, l.Writes, l.Behind, LossWindow, f.LossBound))
		}
	}
	if len(f.SplitBrain) > 0 {
		s := f.SplitBrain[0]
		v = append(v, fmt.Sprintf("%d split-brain writes (first: %s acknowledged after %s)", len(f.SplitBrain), opString(s.Late), opString(s.Prior)))
	}
	if len(f.Phantom) > 0 {
		v = append(v, fmt.Sprintf("%d ids present that no client sent (first: %d)", len(f.Phantom), f.Phantom[0]))
	}
	if len(f.TokenMismatch) > 0 {
		v = append(v, fmt.Sprintf("%d writes acknowledged under a token the history gives to another node (first: %s)", len(f.TokenMismatch), opString(f.TokenMismatch[0])))
	}
	return v
}

func opString(op Op) string {
	s := fmt.Sprintf("id %d by %s sent %s", op.ID, op.Client, op.Sent.Format("15:04:05.000"))
	if op.OK {
		s += fmt.Sprintf(", acknowledged %s by port %d under token %d (timeline %d)", op.Done.Format("15:04:05.000"), op.Port, op.Token, op.Timeline)
	} else {
		s += fmt.Sprintf(", failed %s: %s", op.Done.Format("15:04:05.000"), op.Err)
	}
	return s
}
