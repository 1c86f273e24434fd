package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChaosQuorum is the CI chaos run: a 3-node cluster in
// synchronous_mode = "quorum", every node in its own network namespace,
// HAProxy in front, two minutes of faults from a fixed seed (every kind
// of fault can be drawn), then a heal. It fails on any lost acknowledged
// write, any split-brain write, any id no client sent, any write
// acknowledged under another node's token (the safety properties), and
// on a cluster that does not form again within a minute of the heal
// (liveness). It costs about 3 to 4 minutes. The report is kept
// under $RAMD_CHAOS_RESULTS (default: <tmp>/ramd-chaos-results) and
// printed.
func TestChaosQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-minute real-cluster run")
	}
	requireTools(t)
	root := os.Getenv("RAMD_CHAOS_RESULTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "ramd-chaos-results")
	}
	o := Options{Binary: ramdBin, Nodes: 3, SyncMode: "quorum", Seed: 20261126, Duration: 2 * time.Minute,
		HAProxyConfig: "../../deploy/haproxy/haproxy.cfg", RequireHAProxy: os.Getenv("CI") != "", Progress: testWriter{t},
		RecoveryTimeout: time.Minute}
	o.OutDir = ResultDir(root, o, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	res, err := Run(ctx, o)
	if err != nil && res == nil {
		t.Fatalf("chaos run: %v (node logs under %s)", err, o.OutDir)
	}
	// Liveness (the cluster forms again after the heal, and so a final
	// read is possible) is told apart from safety in the messages: this
	// seed is the regression case of findings 2 and 4 (docs/benchmarks.md,
	// "Chaos"), which left the cluster without a primary.
	var liveness []string
	if err != nil {
		if strings.Contains(err.Error(), "no final read") {
			liveness = append(liveness, err.Error())
		} else {
			t.Errorf("seed %d: %v", o.Seed, err)
		}
	}
	t.Logf("report in %s\n%s\n%s", res.Dir, res.Summary(), res.Timeline())
	for _, v := range res.Findings.Violations(true) {
		if strings.HasPrefix(v, "no final read") {
			continue // in liveness above
		}
		t.Errorf("seed %d: %s", o.Seed, v)
	}
	if res.Recovered.IsZero() {
		liveness = append(liveness, fmt.Sprintf("the cluster did not form again within %s of the heal", o.RecoveryTimeout))
	}
	for _, l := range liveness {
		t.Errorf("LIVENESS: seed %d: %s (not a safety violation; see the timeline and logs/ in %s)", o.Seed, l, res.Dir)
	}
	if res.Findings.Acked == 0 {
		t.Errorf("seed %d: no write was acknowledged at all", o.Seed)
	}
}

// requireTools skips without root, PostgreSQL or tc, except in CI where
// they are required.
func requireTools(t *testing.T) {
	t.Helper()
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "root (network namespaces)"
	case ramdBin == "":
		missing = "PostgreSQL 15"
	default:
		if _, err := exec.LookPath("tc"); err != nil {
			missing = "tc (iproute2)"
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the chaos run needs %s and CI is set", missing)
	}
	t.Skipf("needs %s", missing)
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
