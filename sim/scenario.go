package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Step is one scheduled fault. A schedule is a pure function of the seed
// and the configuration (generated before the run starts), so it replays
// exactly; only selectors that name a role ("primary", "leader",
// "highest-lsn", "promoting") are resolved when the step fires, and the
// trace records whom they hit.
//
// Text form, one step a line (ParseSchedule, FormatSchedule):
//
//	at 10s isolate primary         cut a node off (both directions)
//	at 10s halves                  random halves (Arg seeds the split)
//	at 10s ring                    majority ring: each node sees a majority, not the same one
//	at 10s oneway 1 3              cut the link 1→3 only
//	at 20s heal                    restore every link
//	at 12s crash primary           kill daemon and PostgreSQL (disk keeps what is durable)
//	at 14s restart 2 | restart all
//	at 15s pause leader 3s         freeze the daemon; it resumes with a clock jump
//	at 0s drift 2 1.008            node 2's clock runs at rate 1.008
//	at 5s net 0.05 0.02 40ms       drop prob, duplicate prob, max delay
//
// The coordination database (pglock backend; healed by heal):
//
//	at 10s dbcut primary both      cut node↔database (both, to: requests lost, from: answers lost)
//	at 10s dbcut all to            every node's link to the database
//	at 10s dbrestart 3s            restart it: sessions and the lock gone, down 3s, the row kept
//	at 10s dbslow 5s 3s            for 5s every statement waits 3s before it executes
//	at 10s dbkill coordinator      pg_terminate_backend on that node's lock session
//	at 10s dbjitter 5s 300ms       for 5s each answer waits up to 300ms more (answers on
//	                               a daemon's two connections overtake each other)
//
// Selectors: a node id, primary (the node that can acknowledge writes, else
// the applied primary), leader (raft leader; pglock: a node that believes
// it holds the coordinator lock), coordinator (pglock: the node whose
// session holds the lock on the server), highest-lsn (the standby
// with the highest WAL position), promoting (waits up to 15s for a node
// whose PostgreSQL is promoting), all (restart only).
type Step struct {
	At     time.Duration
	Op     string
	Target string
	Arg    string
	For    time.Duration
	Rate   float64
}

func (st Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "at %v %s", st.At, st.Op)
	switch st.Op {
	case "isolate", "crash", "restart", "dbkill":
		b.WriteString(" " + st.Target)
	case "dbcut":
		fmt.Fprintf(&b, " %s %s", st.Target, st.Arg)
	case "dbrestart":
		fmt.Fprintf(&b, " %v", st.For)
	case "dbslow", "dbjitter":
		fmt.Fprintf(&b, " %v %s", st.For, st.Arg)
	case "halves":
		b.WriteString(" " + st.Arg)
	case "oneway":
		fmt.Fprintf(&b, " %s %s", st.Target, st.Arg)
	case "pause":
		fmt.Fprintf(&b, " %s %v", st.Target, st.For)
	case "drift":
		fmt.Fprintf(&b, " %s %s", st.Target, strconv.FormatFloat(st.Rate, 'f', -1, 64))
	case "net":
		fmt.Fprintf(&b, " %s %v", st.Arg, st.For)
	}
	return b.String()
}

// FormatSchedule renders a schedule in its text form.
func FormatSchedule(steps []Step) string {
	var b strings.Builder
	for _, st := range steps {
		b.WriteString(st.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseSchedule reads the text form (blank lines and # comments allowed).
func ParseSchedule(text string) ([]Step, error) {
	var out []Step
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		st, err := parseStep(f)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", i+1, strings.TrimSpace(line), err)
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b Step) int { return int(a.At - b.At) })
	return out, nil
}

func parseStep(f []string) (Step, error) {
	if len(f) < 3 || f[0] != "at" {
		return Step{}, fmt.Errorf("want: at <time> <op> ...")
	}
	at, err := time.ParseDuration(f[1])
	if err != nil {
		return Step{}, err
	}
	st := Step{At: at, Op: f[2]}
	args := f[3:]
	need := func(n int) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d arguments", st.Op, n)
		}
		return nil
	}
	switch st.Op {
	case "heal", "ring":
		err = need(0)
	case "isolate", "crash", "restart", "dbkill":
		if err = need(1); err == nil {
			st.Target = args[0]
		}
	case "dbcut":
		if err = need(2); err == nil {
			st.Target, st.Arg = args[0], args[1]
			if st.Arg != "both" && st.Arg != "to" && st.Arg != "from" {
				err = fmt.Errorf("dbcut direction %q: want both, to or from", st.Arg)
			}
		}
	case "dbrestart":
		if err = need(1); err == nil {
			st.For, err = time.ParseDuration(args[0])
		}
	case "dbslow", "dbjitter":
		if err = need(2); err == nil {
			st.For, err = time.ParseDuration(args[0])
			if err == nil {
				var d time.Duration
				d, err = time.ParseDuration(args[1])
				st.Arg = d.String()
			}
		}
	case "halves":
		if len(args) > 0 {
			st.Arg = args[0]
		}
	case "oneway":
		if err = need(2); err == nil {
			st.Target, st.Arg = args[0], args[1]
		}
	case "pause":
		if err = need(2); err == nil {
			st.Target = args[0]
			st.For, err = time.ParseDuration(args[1])
		}
	case "drift":
		if err = need(2); err == nil {
			st.Target = args[0]
			st.Rate, err = strconv.ParseFloat(args[1], 64)
		}
	case "net":
		if err = need(3); err == nil {
			st.Arg = args[0] + " " + args[1]
			st.For, err = time.ParseDuration(args[2])
		}
	default:
		err = fmt.Errorf("unknown op %q", st.Op)
	}
	return st, err
}

// Scenarios lists the built-in scenario names.
var Scenarios = []string{"random", "halves", "ring", "isolate-primary", "flapping", "two-failures", "restart-during-promotion", "highest-lsn-partitioned"}

// FaultKinds selects what the random scenario may inject. The zero value
// means all of them.
type FaultKinds struct {
	Partitions, OneWay, Crashes, Pauses, Drift, MessageFaults bool
	// Database: faults of the coordination database (cut from some or
	// all nodes, one-way too; restarted; slow). pglock backend only.
	Database bool
}

func (k FaultKinds) orAll() FaultKinds {
	if k == (FaultKinds{}) {
		return FaultKinds{true, true, true, true, true, true, true}
	}
	return k
}

// schedule builds the fault schedule of a built-in scenario. Faults start
// at FaultStart and stop LivenessBound+5s before the end, so every run
// ends with a healed period the liveness invariant can judge.
func schedule(cfg Config, rng *rand.Rand) ([]Step, error) {
	t0 := cfg.FaultStart
	quietAt := cfg.Duration - cfg.LivenessBound - 5*time.Second
	ids := make([]string, cfg.Nodes)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	node := func() string { return ids[rng.IntN(len(ids))] }
	dur := func(lo, hi time.Duration) time.Duration {
		return (lo + time.Duration(rng.Int64N(int64(hi-lo)+1))).Round(10 * time.Millisecond)
	}
	var out []Step
	add := func(st Step) { out = append(out, st) }
	switch cfg.Scenario {
	case "random":
		k := cfg.Faults.orAll()
		var kinds []string
		for _, c := range []struct {
			on   bool
			name string
		}{{k.Partitions, "partition"}, {k.OneWay, "oneway"}, {k.Crashes, "crash"}, {k.Pauses, "pause"}, {k.Drift, "drift"}, {k.MessageFaults, "net"},
			// Last, and only with pglock: a quorum run's schedule for a
			// seed stays what it was.
			{k.Database && cfg.Election == "pglock", "db"}} {
			if c.on {
				kinds = append(kinds, c.name)
			}
		}
		for t := t0; t < quietAt; t += dur(time.Second, 4*time.Second) {
			switch kinds[rng.IntN(len(kinds))] {
			case "partition":
				switch rng.IntN(4) {
				case 0:
					add(Step{At: t, Op: "halves", Arg: strconv.Itoa(rng.IntN(1000))})
				case 1:
					add(Step{At: t, Op: "ring"})
				case 2:
					add(Step{At: t, Op: "isolate", Target: "primary"})
				default:
					add(Step{At: t, Op: "isolate", Target: node()})
				}
				add(Step{At: min(t+dur(time.Second, 8*time.Second), quietAt), Op: "heal"})
			case "oneway":
				a, b := node(), node()
				if rng.IntN(2) == 0 {
					a = "primary"
				}
				if a != b {
					add(Step{At: t, Op: "oneway", Target: a, Arg: b})
					add(Step{At: min(t+dur(time.Second, 6*time.Second), quietAt), Op: "heal"})
				}
			case "crash":
				who := node()
				if rng.IntN(3) == 0 {
					who = "primary"
				}
				add(Step{At: t, Op: "crash", Target: who})
				add(Step{At: min(t+dur(500*time.Millisecond, 8*time.Second), quietAt), Op: "restart", Target: "all"})
			case "pause":
				who := node()
				if rng.IntN(3) == 0 {
					who = "primary"
				}
				add(Step{At: t, Op: "pause", Target: who, For: dur(200*time.Millisecond, 4*time.Second)})
			case "drift":
				add(Step{At: t, Op: "drift", Target: node(), Rate: 1 + cfg.Drift*(2*rng.Float64()-1)})
			case "net":
				drop := rng.Float64() * 0.05
				dup := rng.Float64() * 0.05
				add(Step{At: t, Op: "net", Arg: fmt.Sprintf("%.3f %.3f", drop, dup), For: dur(2*time.Millisecond, 50*time.Millisecond)})
			case "db":
				end := min(t+dur(time.Second, 8*time.Second), quietAt)
				switch rng.IntN(5) {
				case 4:
					add(Step{At: t, Op: "dbjitter", For: end - t, Arg: dur(20*time.Millisecond, 500*time.Millisecond).String()})
				case 0:
					who := []string{"all", "primary", node()}[rng.IntN(3)]
					add(Step{At: t, Op: "dbcut", Target: who, Arg: []string{"both", "to", "from"}[rng.IntN(3)]})
					add(Step{At: end, Op: "heal"})
				case 1:
					add(Step{At: t, Op: "dbrestart", For: min(dur(200*time.Millisecond, 8*time.Second), quietAt-t)})
				case 2:
					// Delays around and beyond the daemons' 2s op timeout.
					add(Step{At: t, Op: "dbslow", For: end - t, Arg: dur(300*time.Millisecond, 4*time.Second).String()})
				default:
					add(Step{At: t, Op: "dbkill", Target: []string{"coordinator", node()}[rng.IntN(2)]})
				}
			}
		}
		add(Step{At: quietAt, Op: "heal"})
		add(Step{At: quietAt, Op: "restart", Target: "all"})
		add(Step{At: quietAt, Op: "net", Arg: "0 0", For: 10 * time.Millisecond})
	case "halves":
		add(Step{At: t0, Op: "halves", Arg: strconv.Itoa(rng.IntN(1000))})
		add(Step{At: t0 + 10*time.Second, Op: "heal"})
	case "ring":
		add(Step{At: t0, Op: "ring"})
		add(Step{At: t0 + 10*time.Second, Op: "heal"})
	case "isolate-primary":
		add(Step{At: t0, Op: "isolate", Target: "primary"})
		add(Step{At: t0 + 10*time.Second, Op: "heal"})
	case "flapping":
		// Shorter than the detection delay: must not cause a failover.
		for t := t0; t < t0+20*time.Second; t += 2 * time.Second {
			add(Step{At: t, Op: "isolate", Target: "primary"})
			add(Step{At: t + dur(300*time.Millisecond, 800*time.Millisecond), Op: "heal"})
		}
	case "two-failures":
		add(Step{At: t0, Op: "crash", Target: "primary"})
		add(Step{At: t0 + 12*time.Second, Op: "crash", Target: "primary"})
		add(Step{At: t0 + 24*time.Second, Op: "restart", Target: "all"})
	case "restart-during-promotion":
		add(Step{At: t0, Op: "crash", Target: "primary"})
		add(Step{At: t0 + 100*time.Millisecond, Op: "crash", Target: "promoting"})
		add(Step{At: t0 + 2*time.Second, Op: "restart", Target: "last-crashed"})
		add(Step{At: t0 + 20*time.Second, Op: "restart", Target: "all"})
	case "highest-lsn-partitioned":
		add(Step{At: t0, Op: "isolate", Target: "highest-lsn"})
		add(Step{At: t0 + 10*time.Millisecond, Op: "crash", Target: "primary"})
		add(Step{At: t0 + 15*time.Second, Op: "heal"})
		add(Step{At: t0 + 15*time.Second, Op: "restart", Target: "all"})
	default:
		return nil, fmt.Errorf("sim: unknown scenario %q (have %s)", cfg.Scenario, strings.Join(Scenarios, ", "))
	}
	slices.SortStableFunc(out, func(a, b Step) int { return int(a.At - b.At) })
	return out, nil
}
