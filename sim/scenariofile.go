package sim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ScenarioFile is a readable scenario with expected outcomes
// (testdata/*.txt):
//
//	# what this checks
//	nodes 5
//	sync quorum                       # or off (default)
//	election pglock                   # or quorum (default)
//	duration 40s
//	at 10s isolate primary            # schedule steps, as in ParseSchedule
//	expect writable token>=2 within 10s   # after the first step
//	expect fenced 1                   # node 1 fenced or demoted after the first step
//	expect failovers 1                # or failovers>=1
//	expect false-failovers 0
//	expect no-violation
//	expect outage <= 6s               # no stretch without a writable node after the first step is longer
//	expect no-outage                  # a writable node at every instant after the first step
//	expect event any coordinator within 3s   # an election event of that kind (node id or any) after the first step
type ScenarioFile struct {
	Config  Config
	Expect  []string
	FirstAt time.Duration
}

// ParseScenarioFile reads a scenario file.
func ParseScenarioFile(text string) (ScenarioFile, error) {
	var sf ScenarioFile
	var sched []string
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "nodes":
			sf.Config.Nodes, err = strconv.Atoi(f[1])
		case "sync":
			sf.Config.Sync = f[1] == "quorum"
		case "election":
			sf.Config.Election = f[1]
		case "duration":
			sf.Config.Duration, err = time.ParseDuration(f[1])
		case "at":
			sched = append(sched, line)
		case "expect":
			sf.Expect = append(sf.Expect, strings.Join(f[1:], " "))
		default:
			err = fmt.Errorf("unknown directive %q", f[0])
		}
		if err != nil {
			return sf, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	steps, err := ParseSchedule(strings.Join(sched, "\n"))
	if err != nil {
		return sf, err
	}
	if len(steps) == 0 {
		return sf, fmt.Errorf("no schedule")
	}
	sf.Config.Schedule, sf.Config.Scenario, sf.FirstAt = steps, "file", steps[0].At
	return sf, nil
}

// Check compares a run with the file's expectations and returns the
// unmet ones.
func (sf ScenarioFile) Check(r Result) []string {
	var bad []string
	for _, e := range sf.Expect {
		if ok, why := sf.check(e, r); !ok {
			bad = append(bad, fmt.Sprintf("expect %s: %s", e, why))
		}
	}
	return bad
}

func (sf ScenarioFile) check(e string, r Result) (bool, string) {
	f := strings.Fields(e)
	switch {
	case e == "no-violation":
		if r.Violation != nil {
			return false, r.Violation.String()
		}
		return true, ""
	case f[0] == "writable" && len(f) == 4 && strings.HasPrefix(f[1], "token>=") && f[2] == "within":
		tok, err1 := strconv.ParseUint(strings.TrimPrefix(f[1], "token>="), 10, 64)
		d, err2 := time.ParseDuration(f[3])
		if err1 != nil || err2 != nil {
			return false, "malformed"
		}
		best := time.Duration(-1)
		for t, at := range r.FirstWritable {
			if t >= tok && (best < 0 || at < best) {
				best = at
			}
		}
		if best < 0 {
			return false, fmt.Sprintf("never writable under token >= %d", tok)
		}
		if best-sf.FirstAt > d {
			return false, fmt.Sprintf("first writable %v after the first fault", best-sf.FirstAt)
		}
		return true, ""
	case f[0] == "outage" && len(f) == 3 && f[1] == "<=":
		d, err := time.ParseDuration(f[2])
		if err != nil {
			return false, "malformed"
		}
		for _, o := range r.Outages {
			if o.To >= 0 && o.To < sf.FirstAt {
				continue
			}
			if o.To < 0 {
				return false, fmt.Sprintf("no writable node from %v to the end of the run", o.From)
			}
			if o.To-max(o.From, sf.FirstAt) > d {
				return false, fmt.Sprintf("no writable node from %v to %v", o.From, o.To)
			}
		}
		return true, ""
	case e == "no-outage":
		for _, o := range r.Outages {
			if o.To < 0 || o.To >= sf.FirstAt {
				return false, fmt.Sprintf("no writable node from %v to %v", o.From, o.To)
			}
		}
		return true, ""
	case f[0] == "event" && len(f) == 5 && f[3] == "within":
		d, err := time.ParseDuration(f[4])
		if err != nil {
			return false, "malformed"
		}
		for _, ev := range r.Trace {
			if ev.At < sf.FirstAt || ev.At-sf.FirstAt > d || ev.Kind != "event" || !strings.HasPrefix(ev.Text, f[2]+":") {
				continue
			}
			if f[1] == "any" || fmt.Sprintf("%d", ev.Node) == f[1] {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no %s event on %s within %v of the first step", f[2], f[1], d)
	case f[0] == "fenced" && len(f) == 2:
		who := "n" + f[1]
		for _, ev := range r.Trace {
			if ev.At >= sf.FirstAt && fmt.Sprintf("n%d", ev.Node) == who && ev.Kind == "action" &&
				(strings.HasPrefix(ev.Text, "fence") || strings.HasPrefix(ev.Text, "demote")) {
				return true, ""
			}
		}
		return false, who + " was never fenced or demoted"
	case strings.HasPrefix(f[0], "failovers") || strings.HasPrefix(f[0], "false-failovers"):
		name, val, atLeast := f[0], "", false
		if i := strings.Index(name, ">="); i >= 0 {
			name, val, atLeast = name[:i], name[i+2:], true
		} else if len(f) == 2 {
			val = f[1]
		}
		want, err := strconv.Atoi(val)
		if err != nil {
			return false, "malformed"
		}
		got := r.Failovers
		if name == "false-failovers" {
			got = r.FalseFailovers
		}
		if got == want || (atLeast && got > want) {
			return true, ""
		}
		return false, fmt.Sprintf("got %d", got)
	}
	return false, "unknown expectation"
}
