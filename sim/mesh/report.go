package mesh

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints a result as a readable table.
func WriteTable(w io.Writer, res *Result) {
	t := res.Timings
	fmt.Fprintf(w, "mesh simulator: %d nodes, loss %.1f%%, seed %d\n", res.Nodes, res.Loss*100, res.Seed)
	lower, upper := t.SuspicionTimeout(res.Nodes)
	fmt.Fprintf(w, "timings (preset %s, x%.2f of the daemon's): probe %v / timeout %v, gossip %v to %d, suspicion %v-%v, push/pull %v, rejoin %v, retransmit mult %d (state broadcasts %d)\n\n",
		t.Preset, t.Scale, t.ProbeInterval, t.ProbeTimeout, t.GossipInterval, t.GossipNodes,
		lower.Round(time.Millisecond), upper.Round(time.Millisecond), t.PushPullInterval, t.RejoinInterval,
		t.RetransmitMult, t.StateRetransmitMult)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tnodes\tmedian\tp90\tmax\tall nodes")
	row := func(name string, s Spread) {
		all := "NOT ALL"
		if len(s.Missing) > 0 {
			all += " (missing " + strings.Join(s.Missing, ", ")
			if s.Of-s.Reached > len(s.Missing) {
				all += ", ..."
			}
			all += ")"
		}
		if s.Complete {
			all = s.All.String()
		}
		fmt.Fprintf(tw, "%s (%s)\t%d/%d\t%v\t%v\t%v\t%s\n", name, s.Subject, s.Reached, s.Of, s.Median, s.P90, s.Max, all)
	}
	row("crash detected", res.Crash)
	row("state broadcast", res.Broadcast)
	row("metadata update", res.Metadata)
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	settled := ""
	if !res.FormationSettled {
		settled = " (gossip not settled)"
	}
	syncs := ""
	if res.FormationSyncs > 0 {
		syncs = fmt.Sprintf(" and %d anti-entropy push/pulls", res.FormationSyncs)
	}
	fmt.Fprintf(tw, "formation\t%v%s in %d waves%s, %d nodes suspected and %d dead verdicts while forming (not counted)\n",
		res.Formation, settled, res.FormationWaves, syncs, res.FormationSuspected, res.FormationVerdicts)
	if res.Filter {
		fmt.Fprintf(tw, "nodes suspected after forming\t%d (the crashed and paused nodes included)\n", res.Suspected)
	}
	if p := res.Partition; p != nil {
		split := "split in " + p.Split.String()
		if !p.SplitComplete {
			split = "NOT fully split after " + p.Lasted.String()
		}
		merge := "re-merged in " + p.Remerge.String() + " after the heal"
		if !p.Remerged {
			merge = "NOT re-merged after " + p.Remerge.String()
		}
		fmt.Fprintf(tw, "partition %d|%d\t%s, %s (%d expected verdicts)\n", p.Sides[0], p.Sides[1], split, merge, p.Verdicts)
	}
	if p := res.Pause; p != nil {
		dead := "none"
		if len(p.DeclaredDead) > 0 {
			dead = strings.Join(p.DeclaredDead, " ")
		}
		fmt.Fprintf(tw, "paused %d for %v\t%s; declared dead: %s\n", len(p.Nodes), p.For, strings.Join(p.Nodes, " "), dead)
		by := "none"
		if len(p.HealthyDeclaredByPaused) > 0 {
			by = verdictText(p.HealthyDeclaredByPaused)
		}
		fmt.Fprintf(tw, "  healthy nodes dead in a paused node's view\t%s\n", by)
		other := "none"
		if len(p.HealthyDeclaredDead) > 0 {
			other = verdictText(p.HealthyDeclaredDead)
		}
		fmt.Fprintf(tw, "  other nodes declared dead during the pause\t%s\n", other)
	}
	falseDead := "0"
	if len(res.FalseDead) > 0 {
		falseDead = fmt.Sprintf("%d: %s", len(res.FalseDead), verdictText(res.FalseDead))
	}
	fmt.Fprintf(tw, "healthy nodes declared dead (loss)\t%s\n", falseDead)
	s := res.Net
	fmt.Fprintf(tw, "packets\t%d sent, %d lost to loss, %d to partition, %d to full queues; %d dials (%d refused, %d timed out), %d streams cut\n",
		s.Sent, s.LostRandom, s.LostPartition, s.LostOverflow, s.Dials, s.DialsRefused, s.DialsTimedOut, s.StreamsCut)
	if res.Filter {
		fmt.Fprintf(tw, "duplicate-alive filter\t%d alive messages dropped (%d whole packets), %d markers, longest marker wait %v; %d handler-queue drops\n",
			s.FilteredAlive, s.FilteredPackets, s.Markers, s.MarkerMaxWait.Round(time.Millisecond), s.HandlerDrops)
	} else {
		fmt.Fprintf(tw, "duplicate-alive filter\toff; %d handler-queue drops\n", s.HandlerDrops)
	}
	rss := ""
	if res.PeakRSSMB > 0 {
		rss = fmt.Sprintf(", peak RSS %d MB", res.PeakRSSMB)
	}
	if res.GC == GCQuiet {
		rss += fmt.Sprintf("; collector off, %d collections at quiet points (%v)", res.Collections, res.CollectWall)
	}
	fmt.Fprintf(tw, "wall clock\t%v (CPU %v)%s; formation and settling %v (CPU %v), measured phases %v (CPU %v)\n",
		res.Wall, res.CPU, rss, res.Wall-res.MeasureWall, res.FormationCPU, res.MeasureWall, res.MeasureCPU)
	verdict := "PASS"
	if !res.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(tw, "result\t%s\n", verdict)
	tw.Flush()
}

func verdictText(vs []Verdict) string {
	var parts []string
	for i, v := range vs {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("... %d more", len(vs)-10))
			break
		}
		parts = append(parts, fmt.Sprintf("%s by %d at %v (%s)", v.Subject, v.Observers, v.FirstAt, v.Phase))
	}
	return strings.Join(parts, ", ")
}
