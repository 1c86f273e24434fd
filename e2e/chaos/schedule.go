package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Kind is a fault the nemesis can inject.
type Kind string

// The faults. Targets named by role (primary, coordinator) are resolved
// when the fault starts, from the cluster's own view; the others are
// drawn from the schedule's seed.
const (
	PartitionHalves Kind = "partition-halves"    // random split, minority of 1..n/2 nodes cut from the rest (links between nodes; clients reach all)
	MajorityRing    Kind = "majority-ring"       // every node sees a majority, no two the same one (3 nodes: one link cut)
	IsolatePrimary  Kind = "isolate-primary"     // the primary's veth down: cut from nodes and clients alike
	IsolateCoord    Kind = "isolate-coordinator" // the raft leader's veth down
	KillDaemon      Kind = "kill-daemon"         // kill -9 of a daemon; restarted at the heal
	KillPostmaster  Kind = "kill-postmaster"     // kill -9 of a postmaster only (its backends notice and exit); the daemon restarts it
	KillBoth        Kind = "kill-both"           // kill -9 of a daemon and its whole PostgreSQL process group; daemon restarted at the heal
	StopDaemon      Kind = "sigstop-daemon"      // SIGSTOP of a daemon, SIGCONT at the heal
	StopPostmaster  Kind = "sigstop-postmaster"  // SIGSTOP of a postmaster, SIGCONT at the heal
	Netem           Kind = "netem"               // latency, jitter and loss on a node's link (tc netem)
	Switchover      Kind = "switchover"          // planned switchover through a random node's API
	RestartNode     Kind = "restart"             // clean stop of a node (SIGTERM), started again at the heal
)

// AllKinds is every fault, in the order they are documented.
var AllKinds = []Kind{PartitionHalves, MajorityRing, IsolatePrimary, IsolateCoord, KillDaemon, KillPostmaster, KillBoth,
	StopDaemon, StopPostmaster, Netem, Switchover, RestartNode}

// Fault is one scheduled fault.
type Fault struct {
	// At is the offset from the start of the chaos phase.
	At   time.Duration
	Kind Kind
	// Hold is how long the fault lasts before it is healed.
	Hold time.Duration
	// Pick seeds the choice of target(s) and parameters, so that a
	// schedule replays the same choices.
	Pick uint64
}

// ScheduleOptions bounds a schedule.
type ScheduleOptions struct {
	Seed     uint64
	Duration time.Duration // the chaos phase; no fault starts after Duration minus its hold
	Kinds    []Kind        // default AllKinds
	// MinHold, MaxHold bound each fault's duration; MinGap, MaxGap the
	// quiet time after each heal.
	MinHold, MaxHold, MinGap, MaxGap time.Duration
}

// NewSchedule draws the faults for o from o.Seed.
func NewSchedule(o ScheduleOptions) ([]Fault, error) {
	if o.Duration <= 0 {
		return nil, fmt.Errorf("chaos: schedule duration %s is not positive", o.Duration)
	}
	if o.MinHold <= 0 || o.MaxHold < o.MinHold || o.MinGap <= 0 || o.MaxGap < o.MinGap {
		return nil, fmt.Errorf("chaos: schedule bounds hold %s..%s gap %s..%s are not positive ranges", o.MinHold, o.MaxHold, o.MinGap, o.MaxGap)
	}
	kinds := o.Kinds
	if len(kinds) == 0 {
		kinds = AllKinds
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x6368616f73))
	between := func(lo, hi time.Duration) time.Duration {
		if hi == lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)))
	}
	var out []Fault
	at := between(o.MinGap, o.MaxGap)
	for {
		f := Fault{At: at, Kind: kinds[r.IntN(len(kinds))], Hold: between(o.MinHold, o.MaxHold), Pick: r.Uint64()}
		if f.Kind == Switchover {
			f.Hold = 0 // instantaneous: the API call returns once it is done
		}
		if f.At+f.Hold > o.Duration {
			break
		}
		out = append(out, f)
		at = f.At + f.Hold + between(o.MinGap, o.MaxGap)
	}
	return out, nil
}

// ParseKinds reads a comma-separated list of fault kinds ("" or "all":
// every kind).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return AllKinds, nil
	}
	var out []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		ok := false
		for _, a := range AllKinds {
			ok = ok || a == k
		}
		if !ok {
			return nil, fmt.Errorf("chaos: unknown fault kind %q (known: %s)", k, kindList())
		}
		out = append(out, k)
	}
	return out, nil
}

func kindList() string {
	var s []string
	for _, k := range AllKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}
