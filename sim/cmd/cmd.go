// Package cmd is the `ramd sim` command line, kept next to the simulator
// so the CLI only has to forward its arguments:
//
//	case "sim":
//		return simcmd.Run(args[1:], stdout, stderr)
package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ramd/ramd/sim"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitViolation = 1
	ExitUsage     = 2
)

// Usage is the one-line synopsis.
const Usage = "ramd sim [-scenario random] [-election quorum|pglock] [-nodes 5] [-seed 1] [-seeds 1] [-sync] [-duration 70s] [-trace] [-replay file] [-buggy-storage]"

// Run parses args, runs the simulator and prints the outcome. One seed
// prints that run's trace; several print a summary and the trace of the
// first failing run. -replay reads a schedule (as printed in a trace) or
// a scenario file (testdata/*.txt) and runs it instead of a scenario.
func Run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ramd sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		cfg      sim.Config
		seed     = fs.Uint64("seed", 1, "first seed")
		seeds    = fs.Int("seeds", 1, "number of seeds to run")
		scenario = fs.String("scenario", "random", "scenario: "+strings.Join(sim.Scenarios, ", "))
		replay   = fs.String("replay", "", "file with a recorded schedule or a scenario file to run")
		trace    = fs.Bool("trace", false, "print the whole trace tail even without a violation (single seed)")
		workers  = fs.Int("workers", 2, "runs in parallel (each run is single-threaded)")
	)
	fs.IntVar(&cfg.Nodes, "nodes", 5, "nodes (3-9; 2-9 with -election pglock)")
	fs.StringVar(&cfg.Election, "election", "quorum", "election backend: quorum or pglock (the coordination database is simulated too)")
	fs.BoolVar(&cfg.Sync, "sync", false, "synchronous_mode=quorum")
	fs.IntVar(&cfg.NumSync, "num-sync", 1, "standbys that must flush a commit in sync mode")
	fs.DurationVar(&cfg.Duration, "duration", 70*time.Second, "simulated time per run")
	fs.BoolVar(&cfg.BuggyStorage, "buggy-storage", false, "use a disk that loses the last vote (to see the simulator catch it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, Usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ExitOK
		}
		fmt.Fprintf(stderr, "ramd sim: %v\nusage: %s\n", err, Usage)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ramd sim: unexpected argument %q\nusage: %s\n", fs.Arg(0), Usage)
		return ExitUsage
	}
	cfg.Seed, cfg.Scenario = *seed, *scenario
	var file *sim.ScenarioFile
	if *replay != "" {
		b, err := os.ReadFile(*replay)
		if err != nil {
			fmt.Fprintf(stderr, "ramd sim: %v\n", err)
			return ExitUsage
		}
		if sf, err := sim.ParseScenarioFile(string(b)); err == nil {
			sf.Config.Seed = cfg.Seed
			if sf.Config.Election == "" {
				sf.Config.Election = cfg.Election
			}
			cfg, file = sf.Config, &sf
		} else if steps, err2 := sim.ParseSchedule(scheduleOnly(string(b))); err2 == nil && len(steps) > 0 {
			cfg.Schedule = steps
		} else {
			fmt.Fprintf(stderr, "ramd sim: %s: %v\n", *replay, err)
			return ExitUsage
		}
	}
	if *seeds <= 1 {
		r := sim.Run(cfg)
		if r.Violation != nil && r.Violation.Invariant == "config" {
			fmt.Fprintf(stderr, "ramd sim: %s\n", r.Violation.Detail)
			return ExitUsage
		}
		if r.Violation != nil || *trace || file != nil {
			sim.PrintTrace(stdout, r)
		} else {
			fmt.Fprintf(stdout, "seed %d: no violation; failovers %d (false %d), acknowledged writes %d, lost %d\n", r.Config.Seed, r.Failovers, r.FalseFailovers, r.Acked, r.LostWrites)
		}
		code := ExitOK
		if file != nil {
			for _, bad := range file.Check(r) {
				fmt.Fprintln(stdout, "UNMET", bad)
				code = ExitViolation
			}
		}
		if r.Violation != nil {
			code = ExitViolation
		}
		return code
	}
	s := sim.RunManyWorkers(cfg, *seeds, *workers, func(done int) {
		if done%100 == 0 {
			fmt.Fprintf(stderr, "%d/%d\n", done, *seeds)
		}
	})
	sim.PrintSummary(stdout, s)
	if len(s.Violations) > 0 {
		fmt.Fprintln(stdout)
		sim.PrintTrace(stdout, s.Violations[0])
		return ExitViolation
	}
	return ExitOK
}

// scheduleOnly keeps the "at ..." lines of a pasted trace.
func scheduleOnly(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "at ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
