package chaos

import (
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one run: its settings, what happened and what the checker
// found.
type Result struct {
	Options  Options
	Schedule []Fault
	Events   []Event
	Ops      []Op
	Samples  []Sample
	History  []History
	Findings Findings
	// Start is when the workload started; ChaosStart/ChaosEnd bound the
	// nemesis; Recovered is when the healed cluster was formed again
	// (zero if it was not within the recovery timeout); End is when the
	// workload stopped.
	Start, ChaosStart, ChaosEnd, Recovered, End time.Time
	// Notes are things the reader should know (a missing HAProxy, a
	// cluster that did not re-form, ...).
	Notes []string
	// Dir is where the report files were written.
	Dir string
}

// Summary renders the summary table.
func (r *Result) Summary() string {
	var b strings.Builder
	f := r.Findings
	o := r.Options
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	notes := slices.Clone(r.Notes)
	row("nodes", o.Nodes)
	row("election", o.Election)
	row("synchronous_mode", o.SyncMode)
	row("seed", o.Seed)
	row("chaos phase", r.ChaosEnd.Sub(r.ChaosStart).Round(time.Second))
	row("faults applied", fmt.Sprintf("%d (%s)", len(r.Events), kindCounts(r.Events)))
	row("writes attempted / acknowledged", fmt.Sprintf("%d / %d", f.Attempted, f.Acked))
	row("acknowledged per client", clientCounts(r.Ops))
	if f.NoFinalRead {
		row("LOST (acknowledged, missing at the end)", "NOT CHECKED: no final read")
	} else {
		row("LOST (acknowledged, missing at the end)", len(f.Lost))
	}
	if len(f.LostWAL) > 0 {
		var l []string
		for _, w := range f.LostWAL {
			if w.NoneKept {
				l = append(l, fmt.Sprintf("token %d (node %d): %d writes, none of the token's kept, >= %d bytes", w.Token, w.Node, w.Writes, w.Bytes))
			} else {
				l = append(l, fmt.Sprintf("token %d (node %d): %d writes, <= %d bytes, %d behind", w.Token, w.Node, w.Writes, w.Bytes, w.Behind))
			}
		}
		row("lost WAL per token (see the note)", strings.Join(l, "; "))
		notes = append(notes, fmt.Sprintf("lost WAL: <= the span of the lost writes; behind: how far the kept history falls short of where the primary was %s before it stopped, checked against maximum_lag_on_failover (%d bytes)", LossWindow, f.LossBound))
	}
	row("in-doubt (failed, but present)", len(f.InDoubt))
	row("phantom (present, never sent)", len(f.Phantom))
	row("SPLIT-BRAIN writes", len(f.SplitBrain))
	row("token mismatches (history names another node)", len(f.TokenMismatch))
	row("writes without a readable token", len(f.TokenUnknown))
	row("probe: instants two nodes accepted a write", len(f.DoublePrimary))
	row("probe: overlapping /primary 200 on two nodes", len(f.APIDoublePrimary))
	row("failovers (new tokens that took writes)", len(f.Failovers))
	var pauses []string
	for _, fo := range f.Failovers {
		pauses = append(pauses, fmt.Sprintf("%.2fs", fo.WritePause.Seconds()))
	}
	row("failover write pauses", strings.Join(pauses, " "))
	span := r.End.Sub(r.ChaosStart)
	row("write unavailability (gaps > 1 s)", fmt.Sprintf("%.1f s of %.0f s (%.1f %%)", f.Unavailable.Seconds(), span.Seconds(), 100*f.Unavailable.Seconds()/max(span.Seconds(), 1)))
	row("longest outage", fmt.Sprintf("%.2f s", f.LongestOutage.Seconds()))
	if r.Recovered.IsZero() {
		row("re-formed after the heal", "NO")
	} else {
		row("re-formed after the heal", fmt.Sprintf("%.1f s after the chaos phase", r.Recovered.Sub(r.ChaosEnd).Seconds()))
	}
	verdict := "PASS"
	if v := f.Violations(o.SyncMode != "off"); len(v) > 0 {
		verdict = "FAIL: " + strings.Join(v, "; ")
	}
	row("verdict", verdict)
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

func kindCounts(ev []Event) string {
	m := map[Kind]int{}
	for _, e := range ev {
		m[e.Kind]++
	}
	var s []string
	for _, k := range AllKinds {
		if m[k] > 0 {
			s = append(s, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(s, ", ")
}

func clientCounts(ops []Op) string {
	m := map[string]int{}
	for _, op := range ops {
		if op.OK {
			m[op.Client]++
		}
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(s, ", ")
}

// Timeline renders what happened, in order, with offsets from the start
// of the chaos phase.
func (r *Result) Timeline() string {
	type line struct {
		at  time.Time
		txt string
	}
	var ls []line
	add := func(at time.Time, format string, a ...any) { ls = append(ls, line{at, fmt.Sprintf(format, a...)}) }
	add(r.Start, "workload started")
	add(r.ChaosStart, "chaos phase starts")
	add(r.ChaosEnd, "chaos phase ends; everything healed")
	if !r.Recovered.IsZero() {
		add(r.Recovered, "cluster formed again")
	} else {
		add(r.End, "the cluster did NOT form again after the heal")
	}
	add(r.End, "workload stopped")
	for _, e := range r.Events {
		s := fmt.Sprintf("FAULT %s %s", e.Kind, e.Target)
		if e.Err != "" {
			s += " (error: " + e.Err + ")"
		}
		add(e.Start, "%s", s)
		if e.Kind != Switchover {
			add(e.End, "heal  %s %s", e.Kind, e.Target)
		} else {
			add(e.End, "switchover returned")
		}
	}
	f := r.Findings
	for _, fo := range f.Failovers {
		add(fo.FirstNew, "token %d: first acknowledged write, on node%d (%s; writes paused %.2f s)", fo.Token, fo.Node, orDash(fo.Reason), fo.WritePause.Seconds())
	}
	for _, o := range f.Outages {
		add(o.From, "outage begins (last acknowledged write); lasts %.2f s", o.To.Sub(o.From).Seconds())
	}
	for i, op := range f.Lost {
		if i == 20 {
			add(op.Done, "... %d more lost writes", len(f.Lost)-20)
			break
		}
		add(op.Done, "LOST %s", opString(op))
	}
	for i, s := range f.SplitBrain {
		if i == 20 {
			add(s.Late.Done, "... %d more split-brain writes", len(f.SplitBrain)-20)
			break
		}
		add(s.Late.Done, "SPLIT-BRAIN %s, after %s", opString(s.Late), opString(s.Prior))
	}
	for i, d := range f.DoublePrimary {
		if i == 20 {
			break
		}
		add(d.From, "probe: node%d and node%d both accepted a write until %s", d.A, d.B, d.To.Format("15:04:05.000"))
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at.Before(ls[j].at) })
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "%s %+8.2fs  %s\n", l.at.UTC().Format("15:04:05.000"), l.at.Sub(r.ChaosStart).Seconds(), l.txt)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// SVG plots the workload's acknowledged writes per second over the run,
// with every fault interval shaded and labelled and every outage marked.
func (r *Result) SVG() string {
	const W, H, left, right, top, bottom = 1200.0, 360.0, 50.0, 20.0, 20.0, 90.0
	from, to := r.Start, r.End
	secs := int(to.Sub(from).Seconds()) + 1
	if secs < 1 {
		secs = 1
	}
	perSec := make([]int, secs)
	for _, op := range r.Ops {
		if op.OK && !strings.HasPrefix(op.Client, "probe-") {
			i := int(op.Done.Sub(from).Seconds())
			if i >= 0 && i < secs {
				perSec[i]++
			}
		}
	}
	peak := 1
	for _, v := range perSec {
		peak = max(peak, v)
	}
	x := func(t time.Time) float64 { return left + (W-left-right)*t.Sub(from).Seconds()/float64(secs) }
	y := func(v int) float64 { return top + (H-top-bottom)*(1-float64(v)/float64(peak)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="10">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	palette := []string{"#fdd", "#dfd", "#ddf", "#ffd", "#fdf", "#dff"}
	for i, e := range r.Events {
		x0, x1 := x(e.Start), x(e.End)
		if x1-x0 < 2 {
			x1 = x0 + 2
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x0, top, x1-x0, H-top-bottom, palette[i%len(palette)], html.EscapeString(string(e.Kind)+" "+e.Target))
		fmt.Fprintf(&b, `<text transform="translate(%.1f,%.1f) rotate(60)">%s</text>`+"\n", x0, H-bottom+14, html.EscapeString(string(e.Kind)))
	}
	for _, o := range r.Findings.Outages {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="4" fill="red"><title>outage %.2f s</title></rect>`+"\n",
			x(o.From), H-bottom+1, max(x(o.To)-x(o.From), 1), o.To.Sub(o.From).Seconds())
	}
	var pts []string
	for i, v := range perSec {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(from.Add(time.Duration(i)*time.Second)), y(v)))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#036" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, H-bottom, W-right, H-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, H-bottom)
	fmt.Fprintf(&b, `<text x="4" y="%.0f">%d/s</text><text x="4" y="%.0f">0</text>`+"\n", top+4, peak, H-bottom)
	for s := 0; s <= secs; s += max(10, secs/12/10*10) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" fill="#555">%ds</text>`+"\n", x(from.Add(time.Duration(s)*time.Second)), H-4, s)
	}
	title := fmt.Sprintf("acknowledged writes/s, %d nodes, election=%s, synchronous_mode=%s, seed %d; shaded: faults; red: outages > 1 s", r.Options.Nodes, r.Options.Election, r.Options.SyncMode, r.Options.Seed)
	fmt.Fprintf(&b, `<text x="%.0f" y="12" font-size="12">%s</text>`+"\n", left, html.EscapeString(title))
	b.WriteString("</svg>\n")
	return b.String()
}

// Write saves summary.txt, timeline.txt, writes.svg, schedule.txt and
// ops.csv under dir.
func (r *Result) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	r.Dir = dir
	var sched strings.Builder
	for _, f := range r.Schedule {
		fmt.Fprintf(&sched, "%8.1fs %-20s hold %5.1fs pick %d\n", f.At.Seconds(), f.Kind, f.Hold.Seconds(), f.Pick)
	}
	files := map[string]string{
		"summary.txt":  r.Summary(),
		"timeline.txt": r.Timeline(),
		"writes.svg":   r.SVG(),
		"schedule.txt": sched.String(),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
	}
	f, err := os.Create(filepath.Join(dir, "ops.csv"))
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer f.Close()
	if err := writeOps(f, r.Ops, r.ChaosStart); err != nil {
		return err
	}
	return f.Close()
}

func writeOps(w io.Writer, ops []Op, t0 time.Time) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "client", "sent_s", "done_s", "ok", "port", "token", "timeline", "lsn", "error"})
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	for _, op := range ops {
		_ = cw.Write([]string{strconv.FormatInt(op.ID, 10), op.Client,
			fmt.Sprintf("%.3f", op.Sent.Sub(t0).Seconds()), fmt.Sprintf("%.3f", op.Done.Sub(t0).Seconds()),
			strconv.FormatBool(op.OK), strconv.Itoa(op.Port), strconv.FormatUint(op.Token, 10), strconv.Itoa(op.Timeline),
			strconv.FormatUint(op.LSN, 10), op.Err + op.TokenErr})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("chaos: ops.csv: %w", err)
	}
	return nil
}
