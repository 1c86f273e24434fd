package mesh

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Seconds is a duration that encodes to JSON as seconds (a float).
type Seconds time.Duration

// MarshalJSON writes the seconds with millisecond precision.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(time.Duration(s).Milliseconds()) / 1000)
}

func (s Seconds) String() string {
	return fmt.Sprintf("%.2fs", time.Duration(s).Seconds())
}

// Spread is how long something took to reach each node: per-node times
// from the event (a crash, a state change) until that node saw it.
type Spread struct {
	Subject string  `json:"subject"`
	Reached int     `json:"reached"` // nodes that saw it
	Of      int     `json:"of"`      // live nodes that should have
	Median  Seconds `json:"median"`
	P90     Seconds `json:"p90"`
	Max     Seconds `json:"max"`
	// All is when the last node saw it; only meaningful when Complete.
	All      Seconds `json:"all"`
	Complete bool    `json:"complete"`
	// Missing names up to maxMissing live nodes that never saw it.
	Missing []string `json:"missing,omitempty"`
}

// maxMissing bounds Spread.Missing: a collapsed run misses hundreds.
const maxMissing = 5

func spreadOf(subject string, per []time.Duration, of int) Spread {
	s := Spread{Subject: subject, Reached: len(per), Of: of}
	if len(per) == 0 {
		return s
	}
	sort.Slice(per, func(i, j int) bool { return per[i] < per[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(per))+0.5) - 1
		return per[max(0, min(i, len(per)-1))]
	}
	s.Median, s.P90, s.Max = Seconds(rank(0.5)), Seconds(rank(0.9)), Seconds(per[len(per)-1])
	s.Complete = len(per) == of
	if s.Complete {
		s.All = s.Max
	}
	return s
}

// PauseResult is the paused-node part of a run.
type PauseResult struct {
	Nodes []string `json:"nodes"`
	For   Seconds  `json:"for"`
	// DeclaredDead lists the paused nodes some node declared dead.
	DeclaredDead []string `json:"declared_dead"`
	// HealthyDeclaredByPaused are healthy nodes that only paused nodes
	// declared dead (in their own views).
	HealthyDeclaredByPaused []Verdict `json:"healthy_declared_by_paused"`
	// HealthyDeclaredDead are nodes that were never paused declared dead
	// by nodes that were never paused, during the pause window.
	HealthyDeclaredDead []Verdict `json:"healthy_declared_dead"`
}

// PartitionResult is the partition part of a run.
type PartitionResult struct {
	Sides [2]int `json:"sides"` // live nodes per side
	// Split is when every live node saw every node of the other side
	// dead (the halves became two clusters); SplitComplete is false if
	// the partition was healed before that.
	Split         Seconds `json:"split"`
	SplitComplete bool    `json:"split_complete"`
	Lasted        Seconds `json:"lasted"`
	// Remerge is from the heal until every live node saw every live
	// node alive.
	Remerge  Seconds `json:"remerge"`
	Remerged bool    `json:"remerged"`
	// Verdicts counts (observer, subject) dead verdicts across the
	// partition or after the heal (expected, not false).
	Verdicts int `json:"verdicts"`
}

// Result is everything one run measured.
type Result struct {
	Nodes   int     `json:"nodes"`
	Loss    float64 `json:"loss"`
	Seed    uint64  `json:"seed"`
	Timings Timings `json:"timings"`
	// Filter: the duplicate-alive filter was on (filter.go).
	Filter bool `json:"filter"`

	Formation        Seconds `json:"formation"`
	FormationSettled bool    `json:"formation_settled"`
	// FormationVerdicts counts dead verdicts while the cluster formed
	// (not counted as false: the process is saturated by the joins).
	FormationVerdicts int `json:"formation_verdicts"`
	// FormationWaves is how many waves the nodes joined in;
	// FormationSyncs how many push/pulls the anti-entropy rounds made
	// (Config.Sync; 0 without).
	FormationWaves int `json:"formation_waves"`
	FormationSyncs int `json:"formation_syncs"`
	// FormationSuspected and Suspected count the distinct nodes suspected
	// (by any node) while the mesh formed and in the measured phases
	// (suspects.go; 0 with the filter off). A healthy node suspected
	// refutes; only the verdicts count as false, but each suspicion
	// is a refutation gossiped to every node.
	FormationSuspected int `json:"formation_suspected"`
	Suspected          int `json:"suspected"`

	Broadcast Spread `json:"broadcast"` // a state broadcast, as SetLocal
	Metadata  Spread `json:"metadata"`  // a NodeMeta change via UpdateNode
	Crash     Spread `json:"crash"`

	Pause     *PauseResult     `json:"pause,omitempty"`
	Partition *PartitionResult `json:"partition,omitempty"`

	// FalseDead lists healthy nodes declared dead by healthy nodes on
	// their side of any partition, outside the pause window (packet loss
	// only): must be empty.
	FalseDead []Verdict `json:"false_dead"`

	Net  NetStats `json:"net"`
	Wall Seconds  `json:"wall"`
	// CPU is the process's user+system CPU time over the run.
	CPU Seconds `json:"cpu"`
	// FormationCPU is the CPU time of formation and settling; MeasureWall
	// and MeasureCPU are the wall clock and CPU time after it (the
	// measured phases).
	FormationCPU Seconds `json:"formation_cpu"`
	MeasureWall  Seconds `json:"measure_wall"`
	MeasureCPU   Seconds `json:"measure_cpu"`
	PeakRSSMB    int64   `json:"peak_rss_mb,omitempty"`
	// GC is Config.GC; Collections and CollectWall are the collections
	// made at quiet points (GCQuiet) and their total wall-clock time.
	GC          string  `json:"gc,omitempty"`
	Collections int     `json:"collections,omitempty"`
	CollectWall Seconds `json:"collect_wall,omitempty"`
	Pass        bool    `json:"pass"`
}
