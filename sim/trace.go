package sim

import (
	"fmt"
	"io"
	"time"
)

// Event is one line of a run's trace: a fault, an action or event of the
// election, a PostgreSQL transition, a leader change, a violation. Message
// deliveries are not traced (too many); the schedule and these events are
// what a reader needs to follow a failure.
type Event struct {
	At   time.Duration
	Node uint64 // 0: the simulator itself
	Kind string
	Text string
}

func (e Event) String() string {
	who := "sim"
	if e.Node != 0 {
		who = fmt.Sprintf("n%d", e.Node)
	}
	return fmt.Sprintf("%10.3fs %-4s %-9s %s", e.At.Seconds(), who, e.Kind, e.Text)
}

func (s *sim) record(node uint64, kind, text string) {
	s.res.Trace = append(s.res.Trace, Event{At: s.now, Node: node, Kind: kind, Text: text})
}

// PrintTrace writes a run's outcome: on a violation the seed, the
// invariant and the last TraceTail events; the schedule to replay it.
func PrintTrace(w io.Writer, r Result) {
	fmt.Fprintf(w, "seed %d, scenario %s, %s election, %d nodes, sync=%v, simulated %v\n", r.Config.Seed, r.Config.Scenario, r.Config.Election, r.Config.Nodes, r.Config.Sync, r.Simulated)
	if r.Violation == nil {
		fmt.Fprintf(w, "no violation; failovers %d (false %d), acknowledged writes %d, lost %d\n", r.Failovers, r.FalseFailovers, r.Acked, r.LostWrites)
	} else {
		fmt.Fprintf(w, "VIOLATION of %s at %v: %s\n", r.Violation.Invariant, r.Violation.At, r.Violation.Detail)
	}
	tail := r.Trace
	if len(tail) > TraceTail {
		fmt.Fprintf(w, "… %d earlier events omitted\n", len(tail)-TraceTail)
		tail = tail[len(tail)-TraceTail:]
	}
	for _, e := range tail {
		fmt.Fprintln(w, e)
	}
	fmt.Fprintf(w, "schedule (replay with sim.ParseSchedule + Config.Schedule):\n%s", FormatSchedule(r.Schedule))
}

// TraceTail is how many trace events PrintTrace shows.
const TraceTail = 50
