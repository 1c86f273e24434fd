// Command benchfailover measures unplanned failover on a local 3-node
// cluster: a writer inserts every 20 ms through a multi-host connection
// string (target_session_attrs=read-write), the bench kills -9 the
// primary's daemon and its PostgreSQL (postmaster and backends), and
// records the time from the kill to the first write acknowledged by the
// new primary, and how many acknowledged rows the new primary lacks. Each
// trial starts a fresh cluster. Run it with `make bench-failover`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
)

func main() {
	bin := flag.String("ramd", "bin/ramd", "ramd binary")
	trials := flag.Int("trials", 10, "number of trials per mode")
	modes := flag.String("sync", "off,quorum", "synchronous_mode values to measure, comma-separated (off, quorum, strict)")
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchfailover:", err)
		os.Exit(1)
	}
	if *trials < 1 {
		fmt.Fprintln(os.Stderr, "benchfailover: -trials must be at least 1")
		os.Exit(2)
	}
	var summaries []string
	for _, mode := range strings.Split(*modes, ",") {
		mode = strings.TrimSpace(mode)
		switch mode {
		case "off", "quorum", "strict":
		default:
			fmt.Fprintf(os.Stderr, "benchfailover: -sync: %q is not off, quorum or strict\n", mode)
			os.Exit(2)
		}
		var times []time.Duration
		lostTotal, ackedTotal := 0, 0
		for i := 1; i <= *trials; i++ {
			d, lost, acked, err := trial(abs, mode)
			if err != nil {
				fmt.Fprintf(os.Stderr, "synchronous_mode=%s trial %d: %v\n", mode, i, err)
				os.Exit(1)
			}
			times = append(times, d)
			lostTotal += lost
			ackedTotal += acked
			fmt.Printf("synchronous_mode=%s trial %2d: writes resumed on the new primary %.2f s after the kill; %d of %d acknowledged rows lost\n", mode, i, d.Seconds(), lost, acked)
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		q := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
		summaries = append(summaries, fmt.Sprintf("synchronous_mode=%-7s %2d trials: kill -9 → first acknowledged write on the new primary: median %.2f s, p90 %.2f s, max %.2f s; acknowledged rows lost: %d of %d",
			mode, len(times), q(0.5).Seconds(), q(0.9).Seconds(), times[len(times)-1].Seconds(), lostTotal, ackedTotal))
	}
	fmt.Printf("\ndefault settings (lease_ttl 2s, renew 500ms, fail_after 500ms, fencing lease)\n")
	for _, s := range summaries {
		fmt.Println(s)
	}
	fmt.Printf("machine: %d CPUs, %s\n", runtime.NumCPU(), runtime.Version())
}

func trial(bin, syncMode string) (time.Duration, int, int, error) {
	dir, err := os.MkdirTemp("", "ramd-benchfo-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	c, err := cluster.Prepare(cluster.Options{Nodes: 3, Dir: dir, Binary: bin, LogLevel: "info", Extra: fmt.Sprintf("\n[failover]\nsynchronous_mode = %q\n", syncMode)})
	if err != nil {
		return 0, 0, 0, err
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.WaitFormed(ctx); err != nil {
		for _, n := range c.Nodes {
			if b, rerr := os.ReadFile(n.LogPath); rerr == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				fmt.Fprintf(os.Stderr, "---- %s (last lines) ----\n%s\n", n.Name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
		return 0, 0, 0, err
	}
	old, err := c.WaitWritable(ctx, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	conn, err := pgx.Connect(ctx, old.DSN())
	if err != nil {
		return 0, 0, 0, err
	}
	_, err = conn.Exec(ctx, "CREATE TABLE bench_writes (id int PRIMARY KEY)")
	conn.Close(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	w := c.NewWriter("bench_writes", 20*time.Millisecond)
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	time.Sleep(3 * time.Second)
	if err := old.Signal(syscall.SIGKILL); err != nil {
		return 0, 0, 0, err
	}
	if err := old.CrashPostgres(); err != nil {
		return 0, 0, 0, err
	}
	killed := time.Now()
	newP, err := c.WaitWritable(ctx, old)
	if err != nil {
		return 0, 0, 0, err
	}
	var first time.Time
	for {
		if at, ok := w.FirstAckAfter(killed, newP.PGPort); ok {
			first = at
			break
		}
		if ctx.Err() != nil {
			return 0, 0, 0, fmt.Errorf("no write acknowledged by %s", newP.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	wstop()
	lost, acked, err := w.Lost(ctx, newP)
	return first.Sub(killed), lost, acked, err
}
