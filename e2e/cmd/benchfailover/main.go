// Command benchfailover measures planned switchover and unplanned failover
// on a local 3-node cluster, per synchronous mode. A writer inserts every
// 20 ms through a multi-host connection string
// (target_session_attrs=read-write). Each trial starts a fresh cluster,
// asks a replica's API for a switchover and records the write pause (last
// acknowledgement by the old primary to the first by the new one), then
// kills -9 the new primary's daemon and PostgreSQL (postmaster and
// backends) and records the time from the kill to the first write
// acknowledged by the next primary; and how many acknowledged rows are
// missing. Run it with `make bench-failover`; ELECTION=pglock (flag
// -election pglock) measures the pglock backend instead, each trial with
// its own coordination server, and NODES (-nodes) sets the cluster size.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/internal/cluster"
	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

func main() {
	bin := flag.String("ramd", "bin/ramd", "ramd binary")
	trials := flag.Int("trials", 10, "number of trials per mode")
	modes := flag.String("sync", "off,quorum", "synchronous_mode values to measure, comma-separated (off, quorum, strict)")
	backend := flag.String("election", "quorum", "election backend: quorum or pglock (a coordination server per trial)")
	nodes := flag.Int("nodes", 3, "nodes per cluster (pglock works with 2)")
	flag.Parse()
	if *backend != "quorum" && *backend != "pglock" {
		fmt.Fprintf(os.Stderr, "benchfailover: -election: %q is not quorum or pglock\n", *backend)
		os.Exit(2)
	}
	if *nodes < 2 || (*backend == "quorum" && *nodes < 3) {
		fmt.Fprintf(os.Stderr, "benchfailover: -nodes %d: at least 3 with quorum, 2 with pglock\n", *nodes)
		os.Exit(2)
	}
	opts := trialOptions{election: *backend, nodes: *nodes}
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
		var times, pauses []time.Duration
		lostTotal, ackedTotal, switchLost := 0, 0, 0
		for i := 1; i <= *trials; i++ {
			r, err := trial(abs, mode, opts)
			if err != nil {
				fmt.Fprintf(os.Stderr, "synchronous_mode=%s trial %d: %v\n", mode, i, err)
				os.Exit(1)
			}
			times, pauses = append(times, r.failover), append(pauses, r.switchPause)
			lostTotal += r.lost
			ackedTotal += r.acked
			switchLost += r.switchLost
			fmt.Printf("synchronous_mode=%s trial %2d: switchover paused writes %.0f ms (%d rows lost); after kill -9 writes resumed on the new primary %.2f s later; %d of %d acknowledged rows lost\n",
				mode, i, r.switchPause.Seconds()*1000, r.switchLost, r.failover.Seconds(), r.lost, r.acked)
		}
		summaries = append(summaries,
			fmt.Sprintf("synchronous_mode=%-7s %2d trials: kill -9 → first acknowledged write on the new primary: %s; acknowledged rows lost: %d of %d", mode, len(times), quantiles(times), lostTotal, ackedTotal),
			fmt.Sprintf("synchronous_mode=%-7s %2d trials: planned switchover, writes paused: %s; rows lost: %d", mode, len(pauses), quantiles(pauses), switchLost))
	}
	fmt.Printf("\nelection %s, %d nodes, default settings (lease_ttl 2s, renew 500ms, fail_after 500ms, fencing lease)\n", *backend, *nodes)
	for _, s := range summaries {
		fmt.Println(s)
	}
	fmt.Printf("machine: %d CPUs, %s\n", runtime.NumCPU(), runtime.Version())
}

// result is one trial's figures.
type result struct {
	failover    time.Duration // kill -9 → first acknowledged write on the new primary
	lost, acked int           // over the whole trial (switchover and failover)
	switchPause time.Duration // last ack on the old primary → first on the new, planned switchover
	switchLost  int
}

// quantiles renders median, p90 and max.
func quantiles(ds []time.Duration) string {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return fmt.Sprintf("median %.2f s, p90 %.2f s, max %.2f s", q(0.5).Seconds(), q(0.9).Seconds(), ds[len(ds)-1].Seconds())
}

// trialOptions is the cluster every trial launches.
type trialOptions struct {
	election string
	nodes    int
}

func trial(bin, syncMode string, o trialOptions) (result, error) {
	var res result
	dir, err := os.MkdirTemp("", "ramd-benchfo-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	copts := cluster.Options{Nodes: o.nodes, Dir: dir, Binary: bin, LogLevel: "info", Extra: fmt.Sprintf("\n[failover]\nsynchronous_mode = %q\n", syncMode)}
	if o.election == "pglock" {
		cdir, err := os.MkdirTemp("/tmp", "ramd-benchcoord-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(cdir)
		coord, err := pgtest.StartCoordination(cdir, "127.0.0.1", slog.New(slog.DiscardHandler))
		if err != nil {
			return res, err
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			coord.Manager.Close()
			_ = coord.Manager.Stop(sctx, pg.StopImmediate)
		}()
		copts.Election, copts.CoordinationDSN = "pglock", coord.DSN
	}
	c, err := cluster.Prepare(copts)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if err := c.Start(); err != nil {
		return res, err
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
		return res, err
	}
	old, err := c.WaitWritable(ctx, nil)
	if err != nil {
		return res, err
	}
	conn, err := pgx.Connect(ctx, old.DSN())
	if err != nil {
		return res, err
	}
	_, err = conn.Exec(ctx, "CREATE TABLE bench_writes (id int PRIMARY KEY)")
	conn.Close(ctx)
	if err != nil {
		return res, err
	}
	w := c.NewWriter("bench_writes", 20*time.Millisecond)
	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	go w.Run(wctx)
	time.Sleep(3 * time.Second)

	// A planned switchover to the best replica, asked through a replica.
	var via *cluster.Node
	for _, n := range c.Nodes {
		if n != old {
			via = n
		}
	}
	if err := post(ctx, via.APIURL()+"/api/v1/cluster/switchover", c.Token); err != nil {
		return res, err
	}
	target, err := c.WaitWritable(ctx, old)
	if err != nil {
		return res, err
	}
	last, _ := w.LastAckBefore(time.Now(), old.PGPort)
	for {
		if at, ok := w.FirstAckAfter(last, target.PGPort); ok {
			res.switchPause = at.Sub(last)
			break
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("no write acknowledged by %s after the switchover", target.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res.switchLost, _, err = w.Lost(ctx, target); err != nil {
		return res, err
	}
	// Let the old primary rejoin before the unplanned failover.
	time.Sleep(3 * time.Second)
	old = target
	if err := old.Signal(syscall.SIGKILL); err != nil {
		return res, err
	}
	if err := old.CrashPostgres(); err != nil {
		return res, err
	}
	killed := time.Now()
	newP, err := c.WaitWritable(ctx, old)
	if err != nil {
		return res, err
	}
	var first time.Time
	for {
		if at, ok := w.FirstAckAfter(killed, newP.PGPort); ok {
			first = at
			break
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("no write acknowledged by %s", newP.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	wstop()
	res.failover = first.Sub(killed)
	res.lost, res.acked, err = w.Lost(ctx, newP)
	return res, err
}

// post sends an empty POST and fails unless the answer is 200.
func post(ctx context.Context, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}
