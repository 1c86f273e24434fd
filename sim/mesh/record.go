package mesh

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// category sorts a "dead" verdict about a node that did not crash.
type category int

const (
	// catFormation: while the cluster was still forming (not measured).
	catFormation category = iota
	// catFalse: a healthy node declared dead: the failure the mesh must
	// not have. A verdict across an active partition is not one.
	catFalse
	// catPaused: a paused node declared dead.
	catPaused
	// catByPaused: a healthy node declared dead by a node that was
	// paused (its view only; the pause held the acks it waited for).
	catByPaused
	// catPartition: across the partition while it lasted, or after the
	// heal until the halves re-merged (stale dead messages crossing).
	catPartition
	// catDuringPause: a node that was never paused, declared dead by one
	// that was never paused either, while nodes were paused. Reported with
	// the pause run, apart from the loss-only verdicts.
	catDuringPause
	numCategories
)

// Verdict counts the nodes that declared one subject dead.
type Verdict struct {
	Subject   string  `json:"subject"`
	Observers int     `json:"observers"`
	FirstAt   Seconds `json:"first_at"` // since the run started
	Phase     string  `json:"phase"`
}

// recorder collects what the nodes' memberlist callbacks report. Its
// methods run under memberlist's node lock: they only touch atomics and
// one short mutex.
type recorder struct {
	start time.Time

	measuring  atomic.Bool // false while the cluster forms
	pausing    atomic.Bool // during the pause window
	phase      atomic.Pointer[string]
	pausedEver []atomic.Bool

	partMu    sync.RWMutex
	side      []int8 // partition side per node; nil: no partition
	afterHeal bool

	crashSubj atomic.Int32 // -1: none watched
	crashSeen []atomic.Int64

	stateSubj atomic.Int32
	stateWant atomic.Uint32
	stateSeen []atomic.Int64

	metaSubj atomic.Int32
	metaWant atomic.Pointer[[]byte]
	metaSeen []atomic.Int64

	mu       sync.Mutex
	verdicts [numCategories]map[int]*Verdict
}

func newRecorder(n int) *recorder {
	r := &recorder{
		start:      time.Now(),
		pausedEver: make([]atomic.Bool, n),
		crashSeen:  make([]atomic.Int64, n),
		stateSeen:  make([]atomic.Int64, n),
		metaSeen:   make([]atomic.Int64, n),
	}
	r.crashSubj.Store(-1)
	r.stateSubj.Store(-1)
	r.metaSubj.Store(-1)
	r.setPhase("formation")
	for i := range r.verdicts {
		r.verdicts[i] = make(map[int]*Verdict)
	}
	return r
}

func (r *recorder) setPhase(p string) { r.phase.Store(&p) }

func (r *recorder) now() int64 { return time.Now().UnixNano() }

func (r *recorder) onAlive(obs, subj int) {}

func (r *recorder) onDead(obs, subj int) {
	if subj < 0 || obs < 0 {
		return
	}
	if int32(subj) == r.crashSubj.Load() {
		r.crashSeen[obs].CompareAndSwap(0, r.now())
		return
	}
	c := r.classify(obs, subj)
	r.mu.Lock()
	v := r.verdicts[c][subj]
	if v == nil {
		v = &Verdict{Subject: nodeName(subj), FirstAt: Seconds(time.Since(r.start)), Phase: *r.phase.Load()}
		r.verdicts[c][subj] = v
	}
	v.Observers++
	r.mu.Unlock()
}

func (r *recorder) classify(obs, subj int) category {
	switch {
	case !r.measuring.Load():
		return catFormation
	case r.pausedEver[subj].Load():
		return catPaused
	case r.pausedEver[obs].Load():
		return catByPaused
	case r.pausing.Load():
		return catDuringPause
	}
	r.partMu.RLock()
	defer r.partMu.RUnlock()
	if r.side != nil && (r.afterHeal || r.side[obs] != r.side[subj]) {
		return catPartition
	}
	return catFalse
}

func (r *recorder) onState(obs, subj int, v uint32) {
	if obs >= 0 && obs < len(r.stateSeen) && int32(subj) == r.stateSubj.Load() && v >= r.stateWant.Load() {
		r.stateSeen[obs].CompareAndSwap(0, r.now())
	}
}

func (r *recorder) onMeta(obs, subj int, meta []byte) {
	if obs < 0 || int32(subj) != r.metaSubj.Load() {
		return
	}
	if w := r.metaWant.Load(); w != nil && bytes.Equal(meta, *w) {
		r.metaSeen[obs].CompareAndSwap(0, r.now())
	}
}

// verdictList returns a category's verdicts, earliest first.
func (r *recorder) verdictList(c category) []Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Verdict, 0, len(r.verdicts[c]))
	for _, v := range r.verdicts[c] {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstAt < out[j].FirstAt })
	return out
}

// observations counts the observers over a category's verdicts.
func (r *recorder) observations(c category) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.verdicts[c] {
		n += v.Observers
	}
	return n
}
