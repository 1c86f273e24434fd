package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/jackc/pgx/v5"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/internal/cluster"
	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/pgtest"
)

// Options configures a run.
type Options struct {
	// Binary is the ramd executable.
	Binary string
	// Nodes: 3 (default) or 5.
	Nodes int
	// SyncMode is [failover] synchronous_mode: off, quorum or strict.
	SyncMode string
	// Election is [cluster] election: quorum (default) or pglock. With
	// pglock the run starts a coordination PostgreSQL in the host's
	// namespace: an isolated node (isolate-primary, isolate-coordinator)
	// is cut off from it too, a partition between nodes is not.
	Election string
	// Seed draws the schedule.
	Seed uint64
	// Duration of the chaos phase (the workload also runs a few seconds
	// before it and through the recovery after it).
	Duration time.Duration
	// Kinds restricts the faults (default: all).
	Kinds []Kind
	// Fault hold and quiet-gap bounds (defaults 3–15 s and 3–8 s).
	MinHold, MaxHold, MinGap, MaxGap time.Duration
	// Extra TOML appended to every node's configuration.
	Extra string
	// WorkDir holds the cluster's files (removed afterwards unless
	// KeepCluster); empty: a temporary directory.
	WorkDir     string
	KeepCluster bool
	// HAProxy is the haproxy executable ("" : looked up in PATH; when
	// missing the HAProxy client is left out with a note unless
	// RequireHAProxy) and HAProxyConfig the shipped configuration.
	HAProxy        string
	HAProxyConfig  string
	RequireHAProxy bool
	// Interval between one client's inserts (default 25 ms) and the
	// timeout of each insert and connection attempt (default 1 s).
	Interval, Timeout time.Duration
	// Progress receives one line per fault as the run goes (optional).
	Progress io.Writer
	// RecoveryTimeout bounds the wait for the healed cluster to form
	// again (default 2 minutes).
	RecoveryTimeout time.Duration
	// OutDir, when set, receives the report (Result.Write) and every
	// node's daemon log (logs/).
	OutDir string
}

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes < 3 || o.Nodes > 9 {
		return fmt.Errorf("chaos: nodes = %d: use 3 to 9", o.Nodes)
	}
	switch o.SyncMode {
	case "":
		o.SyncMode = "quorum"
	case "off", "quorum", "strict":
	default:
		return fmt.Errorf("chaos: synchronous mode %q is not off, quorum or strict", o.SyncMode)
	}
	switch o.Election {
	case "":
		o.Election = "quorum"
	case "quorum", "pglock":
	default:
		return fmt.Errorf("chaos: election %q is not quorum or pglock", o.Election)
	}
	if o.Binary == "" {
		return errors.New("chaos: no ramd binary given")
	}
	if o.Duration <= 0 {
		return fmt.Errorf("chaos: duration %s is not positive", o.Duration)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.MinHold, 3*time.Second)
	def(&o.MaxHold, 15*time.Second)
	def(&o.MinGap, 3*time.Second)
	def(&o.MaxGap, 8*time.Second)
	def(&o.Interval, 25*time.Millisecond)
	def(&o.Timeout, time.Second)
	def(&o.RecoveryTimeout, 2*time.Minute)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// Run launches the cluster, runs the workload, the probe and the nemesis,
// heals, waits for the cluster to re-form, reads the final table and
// checks it. An error means the run could not be carried out (no cluster
// formed, no table to read); violations found by the checker are in the
// result, not an error.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	sched, err := NewSchedule(ScheduleOptions{Seed: o.Seed, Duration: o.Duration, Kinds: o.Kinds,
		MinHold: o.MinHold, MaxHold: o.MaxHold, MinGap: o.MinGap, MaxGap: o.MaxGap})
	if err != nil {
		return nil, err
	}
	res := &Result{Options: o, Schedule: sched}
	progress := func(format string, a ...any) {
		fmt.Fprintf(o.Progress, "%s chaos: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}

	dir := o.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ramd-chaos-"); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
	}
	if !o.KeepCluster {
		defer os.RemoveAll(dir)
	}
	extra := fmt.Sprintf("\n[failover]\nsynchronous_mode = %q\n%s", o.SyncMode, o.Extra)
	c, err := cluster.Prepare(cluster.Options{Nodes: o.Nodes, Dir: dir, Binary: o.Binary, LogLevel: "info", Extra: extra, Netns: true})
	if err != nil {
		return nil, err
	}
	if o.Election == "pglock" {
		cdir := filepath.Join(dir, "coordination")
		if err := os.MkdirAll(cdir, 0o700); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("chaos: %w", err)
		}
		coord, err := pgtest.StartCoordination(cdir, c.HostAddr(), slog.New(slog.DiscardHandler))
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("chaos: coordination server: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = coord.Manager.Stop(sctx, pg.StopImmediate)
			coord.Manager.Close()
		}()
		if err := c.SetCoordination(coord.DSN); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	lossBound, err := maximumLag(o.Extra)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	m := &nemesis{c: c, token: c.Token}
	defer func() {
		healAll(c)
		_ = c.Close()
		if o.OutDir != "" {
			copyLogs(c, filepath.Join(o.OutDir, "logs"))
		}
	}()
	if err := c.Start(); err != nil {
		return nil, err
	}
	fctx, fcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer fcancel()
	if _, err := c.WaitFormed(fctx); err != nil {
		return nil, fmt.Errorf("chaos: the cluster did not form: %w", err)
	}
	p, err := c.WaitWritable(fctx, nil)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(fctx, p.DSN())
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	_, err = conn.Exec(fctx, createTable)
	conn.Close(context.Background())
	if err != nil {
		return nil, fmt.Errorf("chaos: create %s: %w", Table, err)
	}
	progress("cluster of %d formed, primary %s, synchronous_mode=%s, %d faults scheduled over %s", o.Nodes, p.Name, o.SyncMode, len(sched), o.Duration)

	// Clients.
	log := &Log{}
	var clients []*client
	addClient := func(name, dsn string, dial func(context.Context, string, string) (net.Conn, error)) error {
		cfg, err := pgConfig(dsn, dial)
		if err != nil {
			return err
		}
		cfg.ConnectTimeout = o.Timeout
		clients = append(clients, &client{Name: name, Config: cfg, Interval: o.Interval, Timeout: o.Timeout, Log: log})
		return nil
	}
	hpBin := o.HAProxy
	if hpBin == "" {
		hpBin, _ = exec.LookPath("haproxy")
	}
	var hp *haproxy
	switch {
	case hpBin != "":
		ports, err := cluster.FreePorts(2)
		if err != nil {
			return nil, err
		}
		if hp, err = startHAProxy(hpBin, o.HAProxyConfig, dir, c, ports[0], ports[1]); err != nil {
			return nil, err
		}
		defer hp.stop()
		if err := addClient("haproxy", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable", ports[0], c.Password), nil); err != nil {
			return nil, err
		}
	case o.RequireHAProxy:
		return nil, errors.New("chaos: haproxy is not installed (apt-get install haproxy)")
	default:
		res.Notes = append(res.Notes, "haproxy not installed: no client writes through HAProxy")
	}
	if err := addClient("multihost", c.MultiHostDSN(), nil); err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		// A client on the node's side of any partition.
		if err := addClient("direct-"+n.Name, n.DSN(), n.DialContext); err != nil {
			return nil, err
		}
	}

	wctx, wstop := context.WithCancel(ctx)
	defer wstop()
	var wg sync.WaitGroup
	res.Start = time.Now()
	probe := &Probe{}
	for _, cl := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); cl.run(wctx) }()
	}
	for _, n := range c.Nodes {
		wg.Add(2)
		go func() { defer wg.Done(); runProbeWrites(wctx, n, log, 300*time.Millisecond) }()
		go func() { defer wg.Done(); runProbeAPI(wctx, n, probe, res.Start) }()
	}
	stopWorkload := func() {
		wstop()
		wg.Wait()
	}
	defer stopWorkload()
	sleep(ctx, 3*time.Second)
	first, err := m.view(ctx)
	if err != nil {
		return nil, err
	}

	// The nemesis.
	res.ChaosStart = time.Now()
	for _, f := range sched {
		if ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Until(res.ChaosStart.Add(f.At)))
		ev := Event{Fault: f, Start: time.Now()}
		target, h, err := m.apply(ctx, f)
		ev.Target = target
		if err != nil {
			ev.Err = err.Error()
		}
		progress("%+7.1fs %s %s (hold %.1fs)%s", ev.Start.Sub(res.ChaosStart).Seconds(), f.Kind, target, f.Hold.Seconds(), errSuffix(err))
		sleep(ctx, f.Hold)
		if h != nil {
			if err := h(); err != nil {
				ev.Err = joinErr(ev.Err, "heal: "+err.Error())
				progress("heal of %s %s failed: %v", f.Kind, target, err)
			}
		}
		ev.End = time.Now()
		res.Events = append(res.Events, ev)
	}
	sleep(ctx, time.Until(res.ChaosStart.Add(o.Duration)))
	healAll(c)
	res.ChaosEnd = time.Now()
	progress("chaos phase over, everything healed; waiting for the cluster to re-form")
	rctx, rcancel := context.WithTimeout(ctx, o.RecoveryTimeout)
	_, ferr := c.WaitFormed(rctx)
	rcancel()
	if ferr == nil {
		res.Recovered = time.Now()
		progress("re-formed %.1f s after the heal", res.Recovered.Sub(res.ChaosEnd).Seconds())
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("the cluster did not form again within %s of the heal: %v", o.RecoveryTimeout, ferr))
		progress("NOT re-formed: %v", ferr)
	}
	sleep(ctx, 5*time.Second)
	stopWorkload()
	res.End = time.Now()

	// Final read, from the primary. Without one (the cluster has no
	// primary even after the recovery wait) the report is still written,
	// with lost/in-doubt/phantom not computed, and Run returns an error.
	gctx, gcancel := context.WithTimeout(context.Background(), time.Minute)
	defer gcancel()
	var present map[int64]string
	primary, finalErr := c.WaitWritable(gctx, nil)
	if finalErr == nil {
		present, finalErr = readSet(gctx, primary)
	}
	if finalErr != nil {
		finalErr = fmt.Errorf("chaos: no final read (lost writes not checked): %w", finalErr)
		res.Notes = append(res.Notes, finalErr.Error())
	}
	for _, n := range append([]*cluster.Node{primary}, c.Nodes...) {
		if n == nil {
			continue
		}
		if res.History, err = m.history(gctx, n); err == nil {
			break
		}
	}
	portNode := map[int]int{}
	for _, n := range c.Nodes {
		portNode[n.PGPort] = n.ID
	}
	res.Ops, res.Samples = log.Ops(), probe.Samples()
	res.Findings = Check(CheckInput{Ops: res.Ops, Samples: res.Samples, Present: present, NoFinalRead: present == nil,
		History: res.History, PortNode: portNode, From: res.ChaosStart, To: res.End, FirstToken: first.FencingToken,
		LossBound: lossBound})
	if o.OutDir != "" {
		if err := res.Write(o.OutDir); err != nil {
			return res, err
		}
	}
	return res, finalErr
}

// maximumLag is the nodes' [failover] maximum_lag_on_failover: the
// default unless extra sets it.
func maximumLag(extra string) (uint64, error) {
	var v struct {
		Failover struct {
			MaximumLagOnFailover *uint64 `toml:"maximum_lag_on_failover"`
		} `toml:"failover"`
	}
	if _, err := toml.Decode(extra, &v); err != nil {
		return 0, fmt.Errorf("chaos: extra configuration: %w", err)
	}
	if v.Failover.MaximumLagOnFailover != nil {
		return *v.Failover.MaximumLagOnFailover, nil
	}
	return uint64(max(configs.Default().Failover.MaximumLagOnFailover, 0)), nil
}

// copyLogs copies every node's daemon log into dir (best effort).
func copyLogs(c *cluster.Cluster, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644)
		}
	}
}

// healAll undoes every fault the nemesis can leave behind: links, netem,
// isolation, frozen processes, stopped daemons.
func healAll(c *cluster.Cluster) {
	for i, a := range c.Nodes {
		for _, b := range c.Nodes[i+1:] {
			_ = c.HealLink(a, b)
		}
		_ = a.ClearNetem()
		_ = a.Heal()
		if a.Running() {
			_ = a.Signal(syscall.SIGCONT)
		}
		if pid, err := a.PostmasterPID(); err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	for _, n := range c.Nodes {
		if !n.Running() {
			_ = n.Start()
		}
	}
}

// readSet reads every id in the table, with the client that wrote it.
func readSet(ctx context.Context, n *cluster.Node) (map[int64]string, error) {
	conn, err := pgx.Connect(ctx, n.DSN())
	if err != nil {
		return nil, fmt.Errorf("chaos: final read from %s: %w", n.Name, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id, client FROM "+Table)
	if err != nil {
		return nil, fmt.Errorf("chaos: final read from %s: %w", n.Name, err)
	}
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var cl string
		if err := rows.Scan(&id, &cl); err != nil {
			return nil, fmt.Errorf("chaos: final read: %w", err)
		}
		out[id] = cl
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chaos: final read from %s: %w", n.Name, err)
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " ERROR " + err.Error()
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// ResultDir is the directory a run's files go to under root:
// <root>/<UTC date-time>-n<nodes>-<mode>-seed<seed>, with -pglock after
// the mode on that backend.
func ResultDir(root string, o Options, at time.Time) string {
	mode := o.SyncMode
	if o.Election == "pglock" {
		mode += "-pglock"
	}
	return filepath.Join(root, fmt.Sprintf("%s-n%d-%s-seed%s", at.UTC().Format("20060102T150405Z"), o.Nodes, mode, strconv.FormatUint(o.Seed, 10)))
}
