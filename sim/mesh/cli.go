package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"
)

// Exit codes of Command, those of `ramd sim`.
const (
	ExitOK    = 0
	ExitFail  = 1 // a healthy node was declared dead, or a phase did not complete
	ExitUsage = 2
)

// Usage is the synopsis of `ramd sim mesh`.
const Usage = "ramd sim mesh [--nodes N] [--loss P] [--seed S] [--pause K] [--pause-for D] [--delay D] [--jitter D] [--stable D] [--preset auto|daemon|large] [--partition | --no-partition] [--wave N | --waves N] [--sync | --no-sync] [--no-filter] [--scale F] [--retransmit-mult M] [--gc percent|quiet] [--cpuprofile FILE] [--memberlist-log FILE] [--quiet] [--json]"

// Command is `ramd sim mesh`: it parses args, runs the simulator, prints
// the figures on stdout (a table, or JSON with --json) and progress on
// stderr, and returns the exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ramd sim mesh", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cfg Config
	fs.IntVar(&cfg.Nodes, "nodes", 100, "nodes in the mesh (4-100000; 10-1000 is what it is built for)")
	fs.Float64Var(&cfg.Loss, "loss", 0, "packet loss on every link, 0 to <1 (0.05 = 5%)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed for the choice of nodes and the loss draws")
	fs.IntVar(&cfg.Pause, "pause", 0, "nodes to pause (CPU pause) during the quiet window")
	fs.DurationVar(&cfg.PauseFor, "pause-for", 0, "pause length (default: half the minimum suspicion timeout)")
	fs.DurationVar(&cfg.Delay, "delay", 0, "one-way delay of every packet")
	fs.DurationVar(&cfg.Jitter, "jitter", 0, "extra random delay, up to this")
	fs.DurationVar(&cfg.Stable, "stable", 0, "quiet window after the crash (default 5s)")
	noPart := fs.Bool("no-partition", false, "skip the partition and re-merge phase (the default with the large preset)")
	part := fs.Bool("partition", false, "run the partition and re-merge phase (the default with the daemon preset)")
	preset := fs.String("preset", PresetAuto, "memberlist settings: auto (daemon below 500 nodes, large from 500), daemon or large; see docs/benchmarks.md")
	fs.BoolVar(&cfg.NoFilter, "no-filter", false, "deliver every duplicate alive message (turn off the simulation's duplicate-alive filter)")
	wave := fs.Int("wave", -1, "nodes joining at a time while the cluster forms, each wave once the previous ones are absorbed (0: all at once, the daemon preset's default)")
	waves := fs.Int("waves", -1, "join in this many waves of equal cost, shrinking as the cluster grows (default: 6 with the large preset; replaces --wave)")
	syncOn := fs.Bool("sync", false, "end each formation wave with an anti-entropy round: each member missing members push/pulls with one that has all (the large preset's default)")
	syncOff := fs.Bool("no-sync", false, "no anti-entropy round: the formation waits for gossip and memberlist's own push/pulls")
	udpBuf := fs.Int("udp-buffer", 0, "memberlist UDPBufferSize, the largest packet (default: the preset's; the daemon's is 1400)")
	scaleF := fs.Float64("scale", 0, "factor on the daemon's probe and gossip intervals (default: the preset's, max(1, 2·log10(nodes)−2))")
	gcPolicy := fs.String("gc", "", "garbage collector: percent (the pacer; GOGC, 400 unless set) or quiet (off, collecting only at quiet points: between waves and before the measured phases; the large preset's default unless GOGC is set)")
	mult := fs.Int("retransmit-mult", 0, "memberlist RetransmitMult (default: the preset's; the daemon's is 4)")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	mlLog := fs.String("memberlist-log", "", "write every node's memberlist log to this file")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "ramd sim mesh: %v\nusage: %s\n", err, Usage)
		return ExitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, Usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ExitOK
		}
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageErr(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := validateFlags(cfg); err != nil {
		return usageErr(err)
	}
	if *mult < 0 || *mult > 10 {
		return usageErr(fmt.Errorf("--retransmit-mult must be between 1 and 10, got %d", *mult))
	}
	if *part && *noPart {
		return usageErr(errors.New("--partition and --no-partition contradict each other"))
	}
	t, err := PresetTimings(*preset, cfg.Nodes)
	if err != nil {
		return usageErr(fmt.Errorf("--preset: %w", err))
	}
	if *udpBuf > 0 {
		t.UDPBufferSize = *udpBuf
	}
	if *scaleF < 0 || *scaleF > 100 {
		return usageErr(fmt.Errorf("--scale must be between 0 and 100, got %v", *scaleF))
	}
	if *scaleF > 0 {
		t = t.WithScale(*scaleF)
	}
	if *mult > 0 {
		t.RetransmitMult = *mult
	}
	cfg.Timings = &t
	switch {
	case *wave < -1:
		return usageErr(fmt.Errorf("--wave must not be negative, got %d", *wave))
	case *wave > cfg.Nodes:
		return usageErr(fmt.Errorf("--wave must be at most --nodes (%d), got %d", cfg.Nodes, *wave))
	case *waves < -1 || *waves > cfg.Nodes:
		return usageErr(fmt.Errorf("--waves must be between 0 and --nodes (%d), got %d", cfg.Nodes, *waves))
	case *wave >= 0 && *waves >= 0:
		return usageErr(errors.New("--wave and --waves exclude each other"))
	case *syncOn && *syncOff:
		return usageErr(errors.New("--sync and --no-sync exclude each other"))
	}
	large := t.Preset == PresetLarge
	switch {
	case *wave >= 0:
		cfg.Wave = *wave
	case *waves >= 0:
		cfg.Waves = *waves
	case large:
		cfg.Waves = largeWaves
	}
	cfg.Sync = *syncOn || (large && !*syncOff)
	switch {
	case *gcPolicy != "":
		cfg.GC = *gcPolicy
	case large && os.Getenv("GOGC") == "":
		cfg.GC = GCQuiet
	default:
		cfg.GC = GCPercent
	}
	if cfg.GC != GCPercent && cfg.GC != GCQuiet {
		return usageErr(fmt.Errorf("--gc must be %s or %s, got %q", GCPercent, GCQuiet, cfg.GC))
	}
	// The partition phase re-forms half the mesh after the heal, as
	// costly as a formation: the large preset leaves it out unless asked.
	cfg.NoPartition = *noPart || (t.Preset == PresetLarge && !*part)
	if err := t.Validate(); err != nil {
		return usageErr(err)
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	// Hundreds of memberlists allocate a message per packet; the default
	// GOGC spends a third of the CPU collecting. Memory is cheaper here
	// than the CPU that the simulated timeouts depend on.
	if os.Getenv("GOGC") == "" && cfg.GC == GCPercent {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return usageErr(fmt.Errorf("--cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usageErr(fmt.Errorf("--cpuprofile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}
	if *mlLog != "" {
		f, err := os.Create(*mlLog)
		if err != nil {
			return usageErr(fmt.Errorf("--memberlist-log: %w", err))
		}
		defer f.Close()
		cfg.LogOutput = &lockedWriter{w: f}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ramd sim mesh: %v\n", err)
		return ExitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		WriteTable(stdout, res)
	}
	if !res.Pass {
		return ExitFail
	}
	return ExitOK
}

// validateFlags names the flag at fault.
func validateFlags(c Config) error {
	switch {
	case c.Nodes < 4 || c.Nodes > 100000:
		return fmt.Errorf("--nodes must be between 4 and 100000, got %d", c.Nodes)
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("--loss must be at least 0 and below 1, got %v", c.Loss)
	case c.Pause < 0 || c.Pause > c.Nodes/4:
		return fmt.Errorf("--pause must be between 0 and a quarter of --nodes (%d), got %d", c.Nodes/4, c.Pause)
	case c.PauseFor < 0:
		return fmt.Errorf("--pause-for must not be negative, got %v", c.PauseFor)
	case c.Delay < 0 || c.Delay > time.Second:
		return fmt.Errorf("--delay must be between 0 and 1s, got %v", c.Delay)
	case c.Jitter < 0 || c.Jitter > time.Second:
		return fmt.Errorf("--jitter must be between 0 and 1s, got %v", c.Jitter)
	case c.Stable < 0:
		return fmt.Errorf("--stable must not be negative, got %v", c.Stable)
	}
	return c.Validate()
}

// lockedWriter serialises the writes of many loggers to one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
