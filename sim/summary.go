package sim

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// impaired: the node cannot serve as primary right now (down, frozen, or
// any of its links cut).
func (s *sim) impaired(n *simNode) bool {
	if !n.up || n.paused(s.now) {
		return true
	}
	for _, o := range s.ids {
		if o != n.id && (!s.net.connected(n.id, o) || !s.net.connected(o, n.id)) {
			return true
		}
	}
	if s.db != nil && (!s.db.healthy(s.now) || !s.net.connected(n.id, dbID) || !s.net.connected(dbID, n.id)) {
		return true // pglock: a primary that cannot renew promptly
	}
	return false
}

// trackIncidents measures failovers: an incident opens when a fault hits
// the writable primary and closes when a node can acknowledge writes under
// a newer token (a failover) or the same primary writes again.
func (s *sim) trackIncidents() {
	for _, n := range s.nodes {
		if s.impaired(n) {
			s.impairedAt[n.id] = s.now
		}
		if n.canAck(s.now) {
			s.writableAt[n.id] = s.now
			if _, ok := s.res.FirstWritable[n.leaseToken]; !ok {
				s.res.FirstWritable[n.leaseToken] = s.now
			}
		}
	}
	in := s.incident
	if in == nil {
		p := s.inv.committed[s.inv.maxApplied]
		if w, ok := s.writableAt[p]; p != 0 && ok && s.now-w <= time.Second && s.impaired(s.node(p)) {
			s.incident = &incident{start: s.now, token: s.inv.maxApplied, primary: p}
		}
		return
	}
	for _, n := range s.nodes {
		if !n.canAck(s.now) {
			continue
		}
		if n.leaseToken > in.token {
			if in.detectedAt > 0 {
				s.res.Detection = append(s.res.Detection, in.detectedAt-in.start)
			}
			s.res.Writable = append(s.res.Writable, s.now-in.start)
			s.record(n.id, "writable", fmt.Sprintf("writable under token %d, %.2fs after the fault on n%d", n.leaseToken, (s.now-in.start).Seconds(), in.primary))
			s.incident = nil
		} else if n.id == in.primary {
			s.incident = nil // recovered in place
		}
		return
	}
}

func (s *sim) onFailoverStarted(n *simNode) {
	if in := s.incident; in != nil && in.detectedAt == 0 {
		in.detectedAt = s.now
	}
}

// onNewToken counts false failovers: the old primary was up, unfrozen
// and fully connected for the last 5s, and could acknowledge writes
// within them. (A primary whose token an abandoned failover revoked
// cannot, and gives its lease up after ReleaseAfter: replacing it is not
// a false failover.)
func (s *sim) onNewToken(tok, old uint64) {
	o := s.node(old)
	if o == nil {
		return
	}
	w, wok := s.writableAt[old]
	if last, ok := s.impairedAt[old]; o.up && (!ok || s.now-last > 5*time.Second) && wok && s.now-w <= 5*time.Second {
		s.res.FalseFailovers++
		s.record(old, "false", fmt.Sprintf("token %d replaced healthy, connected primary n%d", tok, old))
	}
}

// Dist summarises durations.
type Dist struct {
	N                int
	Median, P90, Max time.Duration
}

func dist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return Dist{N: len(ds), Median: ds[len(ds)/2], P90: ds[len(ds)*9/10], Max: ds[len(ds)-1]}
}

func (d Dist) String() string {
	if d.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d median %.2fs p90 %.2fs max %.2fs", d.N, d.Median.Seconds(), d.P90.Seconds(), d.Max.Seconds())
}

// Summary aggregates many runs.
type Summary struct {
	Config                    Config
	Runs                      int
	Violations                []Result // failing runs, with their traces
	Failovers, FalseFailovers int
	Detection, Writable       Dist
	Acked, LostWrites         int
	Wall                      time.Duration
}

// RunMany runs seeds Seed, Seed+1, … Seed+seeds-1. Runs are independent
// (each has its own world), so they are spread over workers goroutines;
// each run is itself single-threaded. progress, if set, is called after
// each run (from one goroutine at a time).
func RunMany(cfg Config, seeds int, progress func(done int)) Summary {
	return RunManyWorkers(cfg, seeds, 2, progress)
}

// RunManyWorkers is RunMany with an explicit worker count.
func RunManyWorkers(cfg Config, seeds, workers int, progress func(done int)) Summary {
	start := time.Now()
	cfg.setDefaults()
	results := make([]Result, seeds)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next, done := 0, 0
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= seeds {
					return
				}
				c := cfg
				c.Seed = cfg.Seed + uint64(i)
				r := Run(c)
				if r.Violation == nil {
					r.Trace = nil // keep memory small; failing runs keep theirs
				}
				mu.Lock()
				results[i] = r
				done++
				if progress != nil {
					progress(done)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sum := Summary{Config: cfg, Runs: seeds}
	var det, wr []time.Duration
	for _, r := range results {
		if r.Violation != nil {
			sum.Violations = append(sum.Violations, r)
		}
		sum.Failovers += r.Failovers
		sum.FalseFailovers += r.FalseFailovers
		sum.Acked += r.Acked
		sum.LostWrites += r.LostWrites
		det = append(det, r.Detection...)
		wr = append(wr, r.Writable...)
	}
	sum.Detection, sum.Writable = dist(det), dist(wr)
	sum.Wall = time.Since(start)
	return sum
}

// PrintSummary writes a summary for people.
func PrintSummary(w io.Writer, s Summary) {
	c := s.Config
	fmt.Fprintf(w, "%d runs of %s, %s election, %d nodes, sync=%v, seeds %d..%d, %v wall (%.1f runs/s)\n", s.Runs, c.Scenario, c.Election, c.Nodes, c.Sync, c.Seed, c.Seed+uint64(s.Runs)-1, s.Wall.Round(time.Millisecond), float64(s.Runs)/s.Wall.Seconds())
	fmt.Fprintf(w, "violations: %d\n", len(s.Violations))
	for _, r := range s.Violations {
		fmt.Fprintf(w, "  seed %d: %s\n", r.Config.Seed, r.Violation)
	}
	fmt.Fprintf(w, "failovers: %d (false: %d)\n", s.Failovers, s.FalseFailovers)
	fmt.Fprintf(w, "detection time:            %v\n", s.Detection)
	fmt.Fprintf(w, "time to writable primary:  %v\n", s.Writable)
	fmt.Fprintf(w, "acknowledged writes: %d, acknowledged then lost: %d\n", s.Acked, s.LostWrites)
}
