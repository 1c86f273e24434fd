package mesh

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// The garbage-collector policies Config.GC knows.
const (
	// GCPercent leaves the collector to its pacer (GOGC; the command sets
	// 400 unless GOGC is set).
	GCPercent = "percent"
	// GCQuiet turns the pacer off for the run and collects at the run's
	// quiet points instead: before each formation wave after the first
	// (once the process is below waveCPU) and once the formation has
	// settled, before the measured phases. A memory limit (GOMEMLIMIT,
	// or memLimitShare of the machine's memory when unset) stays as the
	// safety net.
	//
	// Why: a thousand memberlists in one process share one heap of a few
	// gigabytes, and a collection marks all of it while every node's
	// probes wait on the same two cores; with the pacer, collections fall
	// anywhere, measured phases included, and delay acks past the probe
	// timeout (docs/benchmarks.md: 17 healthy nodes suspected in 63
	// measured seconds with GOGC=400). A real cluster has one small heap
	// per daemon, per machine. With the collector off for the whole run
	// the heap grew by about 110 MB/s, page faults cost 50-60 s of system
	// time and runs collapsed at the memory limit; collecting at quiet
	// points lets freed memory be reused.
	GCQuiet = "quiet"
)

// memLimitShare is the share of the machine's memory GCQuiet sets as the
// runtime's memory limit when GOMEMLIMIT is not set.
const memLimitShare = 0.6

// collector applies Config.GC for one run.
type collector struct {
	quiet bool
	// count and took: the collections made at quiet points and their
	// total wall-clock time.
	count int
	took  time.Duration
}

// start applies the policy and returns the function that restores the
// process's settings.
func (c *collector) start(policy string) (restore func()) {
	if policy != GCQuiet {
		return func() {}
	}
	c.quiet = true
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		if total := machineMemory(); total > 0 {
			debug.SetMemoryLimit(int64(float64(total) * memLimitShare))
		}
	}
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// quietPoint collects now if the policy says so (and reports whether it
// did): the caller has checked that the process is quiet.
func (c *collector) quietPoint() bool {
	if !c.quiet {
		return false
	}
	t0 := time.Now()
	runtime.GC()
	c.count++
	c.took += time.Since(t0)
	return true
}

// machineMemory returns MemTotal from /proc/meminfo in bytes (0 when it
// cannot be read).
func machineMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
