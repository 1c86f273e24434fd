// Command chaos runs the Jepsen-style chaos harness (package e2e/chaos)
// against a real local cluster: ramd daemons and PostgreSQL, each node in
// its own network namespace, HAProxy in front, a writer workload, a
// probe and a nemesis drawing faults from -seed for -duration. It prints
// the summary and writes the report (summary.txt, timeline.txt,
// writes.svg, schedule.txt, ops.csv, logs/) under -out. It exits 1 when
// the checker finds a violation (lost acknowledged writes in a
// synchronous mode, split-brain writes, phantom ids, token mismatches) or
// the cluster does not form again after the heal. Needs root. Run it
// with `make chaos DURATION=30m SEED=7 NODES=5 SYNC=quorum`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/ramd/ramd/e2e/chaos"
)

func main() {
	bin := flag.String("ramd", "bin/ramd", "ramd binary")
	nodes := flag.Int("nodes", 3, "cluster size (3 or 5)")
	sync := flag.String("sync", "quorum", "synchronous_mode: off, quorum or strict")
	election := flag.String("election", "quorum", "[cluster] election: quorum, or pglock (the run starts a coordination PostgreSQL)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "schedule seed (default: the clock)")
	duration := flag.Duration("duration", 5*time.Minute, "length of the chaos phase")
	kinds := flag.String("faults", "all", "comma-separated fault kinds, or all")
	minHold := flag.Duration("min-hold", 3*time.Second, "shortest fault")
	maxHold := flag.Duration("max-hold", 15*time.Second, "longest fault")
	extra := flag.String("extra", "", "TOML appended to every node's configuration (e.g. '[failover]\\nfencing = \"none\"' — careful: sections repeat)")
	out := flag.String("out", "chaos-results", "results root; each run gets its own directory below")
	hpCfg := flag.String("haproxy-config", "deploy/haproxy/haproxy.cfg", "the HAProxy configuration to run (bind/server lines rewritten)")
	flag.Parse()
	fail := func(code int, format string, a ...any) {
		fmt.Fprintf(os.Stderr, "chaos: "+format+"\n", a...)
		os.Exit(code)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail(2, "%v", err)
	}
	ks, err := chaos.ParseKinds(*kinds)
	if err != nil {
		fail(2, "-faults: %v", err)
	}
	if *nodes != 3 && *nodes != 5 {
		fail(2, "-nodes must be 3 or 5, not %d", *nodes)
	}
	o := chaos.Options{Binary: abs, Nodes: *nodes, SyncMode: *sync, Election: *election, Seed: *seed, Duration: *duration, Kinds: ks,
		MinHold: *minHold, MaxHold: *maxHold, Extra: *extra, HAProxyConfig: *hpCfg, Progress: os.Stdout}
	o.OutDir = chaos.ResultDir(*out, o, time.Now())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("chaos: %d nodes, election=%s, synchronous_mode=%s, seed %d, %s of faults; results in %s\n", o.Nodes, o.Election, o.SyncMode, o.Seed, o.Duration, o.OutDir)
	res, err := chaos.Run(ctx, o)
	if err != nil && res == nil {
		fail(1, "%v", err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
	}
	fmt.Printf("\n%s\nmachine: %d CPUs, %s\nreport: %s\n", res.Summary(), runtime.NumCPU(), runtime.Version(), res.Dir)
	if len(res.Findings.Violations(o.SyncMode != "off")) > 0 || res.Recovered.IsZero() {
		os.Exit(1)
	}
}
