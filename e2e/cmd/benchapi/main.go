// Command benchapi measures the REST API of one node of a running local
// 3-node cluster (throughput and latency of GET /api/v1/cluster/status and
// GET /primary with 1 and 16 concurrent keep-alive clients), and each
// daemon's idle resident memory and CPU. It prints a Markdown table for
// docs/benchmarks.md. Run it with `make bench-api`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

func main() {
	bin := flag.String("ramd", "bin/ramd", "ramd binary")
	dur := flag.Duration("duration", 10*time.Second, "duration of each load run")
	idle := flag.Duration("idle", 20*time.Second, "idle measurement window")
	flag.Parse()
	if err := run(*bin, *dur, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "benchapi:", err)
		os.Exit(1)
	}
}

func run(bin string, dur, idle time.Duration) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ramd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := cluster.Prepare(cluster.Options{Nodes: 3, Dir: dir, Binary: abs, LogLevel: "warn"})
	if err != nil {
		return err
	}
	defer c.Close()
	began := time.Now()
	if err := c.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	st, err := c.WaitFormed(ctx)
	cancel()
	if err != nil {
		return err
	}
	formed := time.Since(began)
	// Let start-up settle before measuring idle cost.
	time.Sleep(3 * time.Second)

	fmt.Printf("Machine: %s, %d CPUs, %s; Go %s\n\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version())
	fmt.Printf("Cluster formation (3 nodes, empty directories to one primary and two streaming replicas): %.1f s\n\n", formed.Seconds())

	fmt.Println("| daemon | idle RSS | idle CPU (% of one core) |")
	fmt.Println("|---|---|---|")
	var wg sync.WaitGroup
	results := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func(i int, n *cluster.Node) {
			defer wg.Done()
			rss, cpu := idleCost(n.PID(), idle)
			results[i] = fmt.Sprintf("| %s | %.1f MB | %.2f %% |", n.Name, float64(rss)/1e6, cpu)
		}(i, n)
	}
	wg.Wait()
	for _, r := range results {
		fmt.Println(r)
	}
	fmt.Println()

	target := c.Nodes[len(c.Nodes)-1] // a replica or the primary: same code path
	for _, n := range c.Nodes {
		if n.ID != st.PrimaryNodeID {
			target = n
		}
	}
	fmt.Printf("Load on %s (%s), %s per run, keep-alive HTTP/1.1 clients on loopback:\n\n", target.Name, roleOf(st, target.ID), dur)
	fmt.Println("| endpoint | clients | requests/s | p50 | p99 | errors |")
	fmt.Println("|---|---|---|---|---|---|")
	primaryNode := target
	for _, n := range c.Nodes {
		if n.ID == st.PrimaryNodeID {
			primaryNode = n
		}
	}
	cases := []struct {
		name string
		url  string
	}{
		{"GET /api/v1/cluster/status", target.APIURL() + "/api/v1/cluster/status"},
		{"GET /primary (on the primary)", primaryNode.APIURL() + "/primary"},
	}
	for _, cs := range cases {
		for _, clients := range []int{1, 16} {
			r := load(cs.url, clients, dur)
			fmt.Printf("| %s | %d | %.0f | %s | %s | %d |\n", cs.name, clients, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors)
		}
	}
	return nil
}

func roleOf(st cluster.Status, id int) string {
	if ns, ok := st.Node(id); ok {
		return ns.Role
	}
	return "unknown"
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func load(url string, clients int, dur time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lats []time.Duration
	errs := 0
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 100000)
			e := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := hc.Get(url)
				if err != nil {
					e++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 && resp.StatusCode != 503 {
					e++
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := result{errors: errs, rps: float64(len(lats)) / dur.Seconds()}
	if len(lats) > 0 {
		r.p50 = lats[len(lats)*50/100]
		r.p99 = lats[len(lats)*99/100]
	}
	return r
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// idleCost samples a process's RSS and CPU time over window.
func idleCost(pid int, window time.Duration) (rss uint64, cpuPct float64) {
	t0 := cpuTicks(pid)
	time.Sleep(window)
	t1 := cpuTicks(pid)
	const hz = 100 // USER_HZ on Linux
	cpuPct = float64(t1-t0) / hz / window.Seconds() * 100
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	return rss, cpuPct
}

func cpuTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return utime + stime
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return fmt.Sprintf("%.0f GiB RAM", kb/1024/1024)
		}
	}
	return "unknown RAM"
}
