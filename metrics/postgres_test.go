package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

func sampleVitals() pg.VitalSigns {
	return pg.VitalSigns{
		MaxConnections: 100, Connections: map[string]int{"active": 2, "idle": 3, "idle_in_transaction": 1},
		XactCommit: 50, XactRollback: 2, BlocksHit: 900, BlocksRead: 100, Deadlocks: 1,
		CheckpointsTimed: 4, CheckpointsRequested: 3, WALBytes: 1 << 20,
		SlotRetainedBytes: map[string]int64{"ramd_node2": 4096}, DatabaseSizeBytes: map[string]int64{"postgres": 8 << 20},
		CollectedAt: time.Unix(1700000000, 0),
	}
}

// populate gives every series a value, so the lint tests see them all.
func populate(m *Metrics) {
	m.SetVitals(sampleVitals())
	m.SetMeshHealth(1)
	m.SetLastBackup(time.Unix(1700000000, 0))
	m.UpdateCluster(1, nil, pg.Health{Running: true, Accepting: true,
		Standbys: []pg.Standby{{ApplicationName: "node2", ReplayLagBytes: 10, ReplayLagSeconds: 0.5}}})
}

func TestVitals(t *testing.T) {
	m := New(prometheus.NewPedanticRegistry())
	// Before the first round: the connection gauges exist at zero.
	if err := testutil.CollectAndCompare(m.vitals, strings.NewReader(`
# HELP ramd_postgresql_connections_total All client connections to the local PostgreSQL (a gauge: the original RAMD name; compare with ramd_postgresql_max_connections).
# TYPE ramd_postgresql_connections_total gauge
ramd_postgresql_connections_total 0
`), "ramd_postgresql_connections_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.vitals, "ramd_postgresql_connections"); n != len(pg.ConnectionStates) {
		t.Errorf("connection state series before the first round = %d, want %d", n, len(pg.ConnectionStates))
	}
	if n := testutil.CollectAndCount(m.vitals, "ramd_postgresql_transactions_committed_total"); n != 0 {
		t.Errorf("a counter exists before the first round")
	}

	m.SetVitals(sampleVitals())
	want := map[string]float64{
		"ramd_postgresql_connections_total":                    6,
		"ramd_postgresql_max_connections":                      100,
		"ramd_postgresql_queries_total":                        52,
		"ramd_postgresql_transactions_committed_total":         50,
		"ramd_postgresql_transactions_rolled_back_total":       2,
		"ramd_postgresql_blocks_hit_total":                     900,
		"ramd_postgresql_blocks_read_total":                    100,
		"ramd_postgresql_deadlocks_total":                      1,
		"ramd_postgresql_wal_written_bytes_total":              1 << 20,
		"ramd_postgresql_stats_last_success_timestamp_seconds": 1700000000,
	}
	for name, v := range want {
		if got := gatherOne(t, m, name, nil); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	for labels, v := range map[[2]string]float64{
		{"ramd_postgresql_connections", "idle_in_transaction"}:            1,
		{"ramd_postgresql_connections", "disabled"}:                       0,
		{"ramd_postgresql_checkpoints_total", "requested"}:                3,
		{"ramd_postgresql_checkpoints_total", "timed"}:                    4,
		{"ramd_postgresql_replication_slot_retained_bytes", "ramd_node2"}: 4096,
		{"ramd_postgresql_database_size_bytes", "postgres"}:               8 << 20,
	} {
		if got := gatherOne(t, m, labels[0], &labels[1]); got != v {
			t.Errorf("%s{%s} = %v, want %v", labels[0], labels[1], got, v)
		}
	}

	// A failed round drops the snapshot but keeps the last success time.
	m.VitalsFailed()
	if got := gatherOne(t, m, "ramd_postgresql_stats_errors_total", nil); got != 1 {
		t.Errorf("errors = %v", got)
	}
	if n := testutil.CollectAndCount(m.vitals, "ramd_postgresql_transactions_committed_total", "ramd_postgresql_database_size_bytes"); n != 0 {
		t.Errorf("%d stale series after a failed round", n)
	}
	if got := gatherOne(t, m, "ramd_postgresql_connections_total", nil); got != 0 {
		t.Errorf("connections after a failed round = %v", got)
	}
	if got := gatherOne(t, m, "ramd_postgresql_stats_last_success_timestamp_seconds", nil); got != 1700000000 {
		t.Errorf("last success = %v", got)
	}
}

// gatherOne returns the value of the series name (with the one label
// value given, if any) from m's collectors.
func gatherOne(t *testing.T, m *Metrics, name string, label *string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.all...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if label != nil && (len(s.GetLabel()) != 1 || s.GetLabel()[0].GetValue() != *label) {
				continue
			}
			switch {
			case s.GetGauge() != nil:
				return s.GetGauge().GetValue()
			case s.GetCounter() != nil:
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s %v", name, label)
	return 0
}

func TestMeshHealthLagSecondsLastBackup(t *testing.T) {
	m := New(prometheus.NewPedanticRegistry())
	populate(m)
	if got := testutil.ToFloat64(m.meshHealth); got != 1 {
		t.Errorf("mesh health = %v", got)
	}
	if got := testutil.ToFloat64(m.standbyLagSeconds.WithLabelValues("node2")); got != 0.5 {
		t.Errorf("standby lag seconds = %v", got)
	}
	if got := testutil.ToFloat64(m.lastBackup); got != 1700000000 {
		t.Errorf("last backup = %v", got)
	}
	// A replica has no per-standby series.
	m.UpdateCluster(1, []mesh.Member{member(1, mesh.RoleReplica, mesh.Alive, true, 0)}, pg.Health{Running: true, Accepting: true, InRecovery: true})
	if n := testutil.CollectAndCount(m.standbyLagSeconds); n != 0 {
		t.Errorf("standby lag seconds series on a replica = %d", n)
	}
	m.SetLastBackup(time.Time{})
	if got := testutil.ToFloat64(m.lastBackup); got != 0 {
		t.Errorf("last backup after reset = %v", got)
	}
}

// TestPromtoolCheckMetrics lints a full scrape with promtool (Debian's
// prometheus package), the second linter the issue names. Only the
// documented compatibility names may be reported.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is required in CI: ", err)
		}
		t.Skip("promtool not installed")
	}
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SetBuildInfo("dev")
	m.ObserveRequest("GET", "/api/v1/health", 200, time.Millisecond)
	m.UpdateElection(Election{Token: 1, Primary: 1})
	populate(m)
	RegisterRuntime(reg)
	// The text exposition format, as a scrape gets it.
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "metrics.txt")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	out, _ := cmd.CombinedOutput() // exits 1 when it reports anything
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		if allowedLint[name] && strings.Contains(line, "_total") {
			seen[name] = true
			continue
		}
		t.Errorf("promtool check metrics: %s", line)
	}
	for name := range allowedLint {
		if !seen[name] {
			t.Errorf("promtool did not report the documented exception %s (output: %s)", name, out)
		}
	}
}
