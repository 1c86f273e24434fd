package gate_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Rounds of sequential single-row commits: each round measures a block
// without the gate, then a block with it, so that load from elsewhere on
// the machine falls on both sides alike.
const (
	rounds          = 10
	commitsPerRound = 200
)

// TestCommitLatency measures what the gate costs a commit: sequential
// single-row INSERTs without and with it, the gate in its own process as
// in the daemon. With RAMD_GATE_PGBENCH=n it also runs n rounds of
// pgbench -n -c 4 -T 10 both ways (20 s more per round).
func TestCommitLatency(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p := startPrimary(t, ctx)
	w := p.newWriter(t, ctx)

	var without, with []time.Duration
	for range rounds {
		without = append(without, p.measure(t, ctx, w, false)...)
		with = append(with, p.measure(t, ctx, w, true)...)
	}
	lw, lg := summarize(without), summarize(with)
	t.Logf("%d sequential single-row commits without the gate: %s", len(without), lw)
	t.Logf("%d sequential single-row commits with the gate:    %s", len(with), lg)
	t.Logf("added by the gate: p50 %s, p99 %s, mean %s", lg.p50-lw.p50, lg.p99-lw.p99, lg.mean-lw.mean)

	n, _ := strconv.Atoi(os.Getenv("RAMD_GATE_PGBENCH"))
	if n <= 0 {
		return
	}
	p.pgbench(t, ctx, "-i", "-q", "-s", "4")
	for i := range n {
		t.Logf("round %d: pgbench -n -c 4 -T 10 without the gate: %s", i+1, p.pgbench(t, ctx, "-n", "-c", "4", "-T", "10"))
		cmd := startGateProcess(t, p)
		p.requireGate(t, ctx, true)
		p.waitSync(t, ctx)
		res := p.pgbench(t, ctx, "-n", "-c", "4", "-T", "10")
		p.requireGate(t, ctx, false)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		p.waitGone(t, ctx)
		t.Logf("round %d: pgbench -n -c 4 -T 10 with the gate:    %s; gate process CPU user %s, system %s",
			i+1, res, cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime())
	}
}

// measure times commitsPerRound commits, with a gate process serving
// synchronous_standby_names or with neither.
func (p *primary) measure(t *testing.T, ctx context.Context, w *writer, withGate bool) []time.Duration {
	t.Helper()
	if withGate {
		cmd := startGateProcess(t, p)
		defer func() {
			p.requireGate(t, ctx, false)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			p.waitGone(t, ctx)
		}()
		p.requireGate(t, ctx, true)
		p.waitSync(t, ctx)
	}
	d := make([]time.Duration, 0, commitsPerRound)
	for range commitsPerRound {
		_, took, gaveUp, err := w.insert(ctx, 10*time.Second)
		if err != nil || gaveUp {
			t.Fatalf("insert: gave up waiting %t, err %v", gaveUp, err)
		}
		d = append(d, took)
	}
	return d
}

type latencies struct{ p50, p90, p99, max, mean time.Duration }

func (l latencies) String() string {
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s, mean %s", l.p50, l.p90, l.p99, l.max, l.mean)
}

func summarize(d []time.Duration) latencies {
	d = slices.Clone(d)
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	q := func(f float64) time.Duration { return d[int(f*float64(len(d)-1))] }
	return latencies{q(0.50), q(0.90), q(0.99), d[len(d)-1], sum / time.Duration(len(d))}
}

var (
	tpsRE     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyRE = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// pgbench runs pgbench over the socket (as postgres when root) and
// returns "<tps> tps, latency average <ms> ms" for a run.
func (p *primary) pgbench(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	bin := filepath.Join(p.cfg.BinDir, "pgbench")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("pgbench: %v", err)
	}
	args = append([]string{"-h", p.cfg.SocketDir, "-p", strconv.Itoa(p.cfg.Port), "-U", p.cfg.Superuser}, args...)
	args = append(args, p.cfg.Database)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	tps, lat := tpsRE.FindSubmatch(out), latencyRE.FindSubmatch(out)
	if tps == nil || lat == nil {
		return "" // initialisation prints neither
	}
	return fmt.Sprintf("%s tps, latency average %s ms", tps[1], lat[1])
}
