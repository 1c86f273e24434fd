package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

func member(id int, role mesh.Role, l mesh.Liveness, healthy bool, lag uint64) mesh.Member {
	return mesh.Member{
		State:    mesh.NodeState{NodeID: id, Name: "n" + string(rune('0'+id)), Role: role, Healthy: healthy, LagBytes: lag},
		Liveness: l,
	}
}

func TestUpdateClusterReplica(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	members := []mesh.Member{
		member(1, mesh.RolePrimary, mesh.Alive, true, 0),
		member(2, mesh.RoleReplica, mesh.Alive, true, 4096),
		member(3, mesh.RoleReplica, mesh.Suspect, true, 0),
		member(4, mesh.RoleReplica, mesh.Dead, false, 0),
		member(5, mesh.RoleReplica, mesh.Left, true, 0),
		member(6, mesh.RoleReplica, mesh.Alive, false, 0),
	}
	local := pg.Health{Running: true, Accepting: true, InRecovery: true, Streaming: true, Timeline: 3, LagSeconds: 1.5}
	m.UpdateCluster(2, members, local)

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"nodes_total", m.nodesTotal, 5},
		{"healthy", m.healthyNodes, 2},
		{"role primary", m.nodeRole.WithLabelValues("primary"), 0},
		{"role replica", m.nodeRole.WithLabelValues("replica"), 1},
		{"role unknown", m.nodeRole.WithLabelValues("unknown"), 0},
		{"pg up", m.pgUp, 1},
		{"lag seconds", m.lagSeconds, 1.5},
		{"lag bytes", m.lagBytes, 4096},
		{"timeline", m.timeline, 3},
		{"alive", m.meshMembers.WithLabelValues("alive"), 3},
		{"suspect", m.meshMembers.WithLabelValues("suspect"), 1},
		{"dead", m.meshMembers.WithLabelValues("dead"), 1},
		{"left", m.meshMembers.WithLabelValues("left"), 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestUpdateClusterPrimaryAndDown(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	members := []mesh.Member{member(1, mesh.RolePrimary, mesh.Alive, true, 999)}

	// A primary reports no lag even if a stale gossiped value says otherwise.
	m.UpdateCluster(1, members, pg.Health{Running: true, Accepting: true, Timeline: 2, LagSeconds: 7})
	if got := testutil.ToFloat64(m.nodeRole.WithLabelValues("primary")); got != 1 {
		t.Errorf("role primary = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.lagBytes); got != 0 {
		t.Errorf("lag bytes on primary = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.lagSeconds); got != 0 {
		t.Errorf("lag seconds on primary = %v, want 0", got)
	}

	// PostgreSQL down: role unknown, up 0; the previous role is cleared.
	m.UpdateCluster(1, members, pg.Health{})
	want := `
# HELP ramd_node_role This node's PostgreSQL role from the last local health check (1 for the current role, 0 otherwise).
# TYPE ramd_node_role gauge
ramd_node_role{role="primary"} 0
ramd_node_role{role="replica"} 0
ramd_node_role{role="unknown"} 1
# HELP ramd_postgresql_up 1 if the local PostgreSQL is running and accepting connections, 0 otherwise.
# TYPE ramd_postgresql_up gauge
ramd_postgresql_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ramd_node_role", "ramd_postgresql_up"); err != nil {
		t.Error(err)
	}
	// Running but not answering is not "up" and has no known role.
	m.UpdateCluster(1, members, pg.Health{Running: true})
	if got := testutil.ToFloat64(m.pgUp); got != 0 {
		t.Errorf("up while not accepting = %v, want 0", got)
	}
}

func TestPrecreatedSeries(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	New(reg)
	// Before any update every role and state series exists, at 0.
	if n := testutil.CollectAndCount(reg, "ramd_node_role"); n != 3 {
		t.Errorf("ramd_node_role series = %d, want 3", n)
	}
	if n := testutil.CollectAndCount(reg, "ramd_mesh_members"); n != 4 {
		t.Errorf("ramd_mesh_members series = %d, want 4", n)
	}
}

func TestObserveRequest(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveRequest("GET", "/api/v1/cluster/nodes/{id}", 200, 300*time.Microsecond)
	m.ObserveRequest("GET", "/api/v1/cluster/nodes/{id}", 404, time.Millisecond)
	m.ObserveRequest("GET", "/api/v1/cluster/nodes/{id}", 200, 2*time.Second)
	m.ObserveRequest("BREW", "/primary", 405, 0)

	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/api/v1/cluster/nodes/{id}", "200")); got != 2 {
		t.Errorf("requests 200 = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/api/v1/cluster/nodes/{id}", "404")); got != 1 {
		t.Errorf("requests 404 = %v, want 1", got)
	}
	// Unknown methods collapse into one label value.
	if got := testutil.ToFloat64(m.requests.WithLabelValues("OTHER", "/primary", "405")); got != 1 {
		t.Errorf("requests OTHER = %v, want 1", got)
	}
	want := `
# HELP ramd_api_request_duration_seconds REST API request latency by method and route template.
# TYPE ramd_api_request_duration_seconds histogram
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.0001"} 0
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.00025"} 0
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.0005"} 1
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.001"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.0025"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.005"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.01"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.025"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.05"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.1"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.25"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="0.5"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="1"} 2
ramd_api_request_duration_seconds_bucket{method="GET",route="/api/v1/cluster/nodes/{id}",le="+Inf"} 3
ramd_api_request_duration_seconds_sum{method="GET",route="/api/v1/cluster/nodes/{id}"} 2.0013
ramd_api_request_duration_seconds_count{method="GET",route="/api/v1/cluster/nodes/{id}"} 3
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.0001"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.00025"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.0005"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.001"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.0025"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.005"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.01"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.025"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.05"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.1"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.25"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="0.5"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="1"} 1
ramd_api_request_duration_seconds_bucket{method="OTHER",route="/primary",le="+Inf"} 1
ramd_api_request_duration_seconds_sum{method="OTHER",route="/primary"} 0
ramd_api_request_duration_seconds_count{method="OTHER",route="/primary"} 1
`
	if err := testutil.CollectAndCompare(m.duration, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestSetBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SetBuildInfo("0.1.0")
	m.SetBuildInfo("0.2.0")
	want := `
# HELP ramd_build_info Always 1; the version label says which ramd release is running.
# TYPE ramd_build_info gauge
ramd_build_info{version="0.2.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ramd_build_info"); err != nil {
		t.Error(err)
	}
}

func TestNilMetricsIsNoop(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("GET", "/x", 200, time.Millisecond)
	m.UpdateCluster(1, nil, pg.Health{})
	m.SetBuildInfo("x")
	m.UpdateElection(Election{Token: 1})
}

// allowedLint lists the lint problems accepted on purpose (see doc.go): the
// two node-count gauges keep their published "_total" names.
var allowedLint = map[string]bool{
	"ramd_cluster_nodes_total":          true,
	"ramd_cluster_healthy_nodes_total":  true,
	"ramd_postgresql_connections_total": true,
}

func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SetBuildInfo("dev")
	m.ObserveRequest("GET", "/api/v1/health", 200, time.Millisecond)
	m.UpdateCluster(1, []mesh.Member{member(1, mesh.RolePrimary, mesh.Alive, true, 0)}, pg.Health{Running: true, Accepting: true})
	populate(m)
	RegisterRuntime(reg)
	RegisterRuntime(reg) // idempotent

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range problems {
		if allowedLint[p.Metric] && strings.Contains(p.Text, "_total") {
			seen[p.Metric] = true
			continue
		}
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// If the exception ever stops being needed, drop it from doc.go too.
	for name := range allowedLint {
		if !seen[name] {
			t.Errorf("expected lint exception for %s did not occur; update doc.go and allowedLint", name)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "go_goroutines", "process_cpu_seconds_total"); err != nil || n < 1 {
		t.Errorf("runtime collectors missing: n=%d err=%v", n, err)
	}
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SetBuildInfo("1.2.3")
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), `ramd_build_info{version="1.2.3"} 1`) {
		t.Errorf("body lacks build info:\n%s", body)
	}
}

func TestDoubleRegistrationPanics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on one registry did not panic")
		}
	}()
	New(reg)
}

func TestReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		"bootstrap":            "bootstrap",
		"switchover from 2":    "switchover",
		"manual failover to 3": "manual",
		"manual failover to 3 (data loss allowed)": "manual",
		"primary 1 released its lease":             "release",
		"primary 1 is dead":                        "failure",
		"postgresql on primary 1 is not running for 10s (primary_start_timeout 10s)":                   "failure",
		"resuming: token 4 is revoked (an earlier coordinator revoked it, or its primary released it)": "other",
		"": "other",
	} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("ReasonClass(%q) = %q, want %q", reason, got, want)
		}
		if !slices.Contains(FailoverReasons, want) {
			t.Errorf("class %q is not in FailoverReasons", want)
		}
	}
}

func TestUpdateElection(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }

	// Every reason class exists at zero before anything happened.
	if n := testutil.CollectAndCount(m.failovers); n != len(FailoverReasons) {
		t.Errorf("ramd_failovers_total series = %d, want %d", n, len(FailoverReasons))
	}
	hist := []election.FailoverRecord{{Token: 1, New: 1, Reason: "bootstrap"}}
	m.UpdateElection(election1(1, 1, hist, false, false, now.Add(1500*time.Millisecond)))
	if got := testutil.ToFloat64(m.leaseRemaining); got != 1.5 {
		t.Errorf("lease remaining = %v, want 1.5", got)
	}
	now = now.Add(2 * time.Second) // the lease ran out without an update
	if got := testutil.ToFloat64(m.leaseRemaining); got != 0 {
		t.Errorf("lease remaining after expiry = %v, want 0", got)
	}

	// The coordinator starts a failover; 2.5 s later the promote applies.
	m.UpdateElection(election1(1, 1, hist, true, true, time.Time{}))
	now = now.Add(2500 * time.Millisecond)
	m.UpdateElection(election1(1, 1, hist, true, true, time.Time{})) // still running
	hist = append(hist, election.FailoverRecord{Token: 2, Old: 1, New: 2, Reason: "primary 1 is dead"})
	m.UpdateElection(election1(2, 2, hist, true, false, time.Time{}))
	m.UpdateElection(election1(2, 2, hist, true, false, time.Time{})) // idempotent
	// An abandoned failover is not observed.
	m.UpdateElection(election1(2, 2, hist, true, true, time.Time{}))
	m.UpdateElection(election1(2, 2, hist, false, false, time.Time{}))
	hist = append(hist, election.FailoverRecord{Token: 3, Old: 2, New: 1, Reason: "switchover from 2"})
	m.UpdateElection(election1(3, 1, hist, false, false, time.Time{}))

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"token", m.fencingToken, 3},
		{"coordinator", m.coordinator, 0},
		{"leader changes", m.leaderChanges, 2},
		{"bootstrap", m.failovers.WithLabelValues("bootstrap"), 1},
		{"failure", m.failovers.WithLabelValues("failure"), 1},
		{"switchover", m.failovers.WithLabelValues("switchover"), 1},
		{"manual", m.failovers.WithLabelValues("manual"), 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	want := `
# HELP ramd_failover_duration_seconds On the coordinator: time from starting a failover (the failure verdict, release, switchover or manual request) to the promotion being applied.
# TYPE ramd_failover_duration_seconds histogram
ramd_failover_duration_seconds_bucket{le="0.1"} 0
ramd_failover_duration_seconds_bucket{le="0.25"} 0
ramd_failover_duration_seconds_bucket{le="0.5"} 0
ramd_failover_duration_seconds_bucket{le="1"} 0
ramd_failover_duration_seconds_bucket{le="1.5"} 0
ramd_failover_duration_seconds_bucket{le="2"} 0
ramd_failover_duration_seconds_bucket{le="3"} 1
ramd_failover_duration_seconds_bucket{le="5"} 1
ramd_failover_duration_seconds_bucket{le="10"} 1
ramd_failover_duration_seconds_bucket{le="30"} 1
ramd_failover_duration_seconds_bucket{le="60"} 1
ramd_failover_duration_seconds_bucket{le="+Inf"} 1
ramd_failover_duration_seconds_sum 2.5
ramd_failover_duration_seconds_count 1
`
	if err := testutil.CollectAndCompare(m.failoverDuration, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// A daemon restarting with the same history resumes at the same counts.
	m2 := New(prometheus.NewPedanticRegistry())
	m2.UpdateElection(election1(3, 1, hist, false, false, time.Time{}))
	if got := testutil.ToFloat64(m2.failovers.WithLabelValues("failure")); got != 1 {
		t.Errorf("failure after restart = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m2.leaderChanges); got != 0 {
		t.Errorf("leader changes after restart = %v, want 0", got)
	}
}

func election1(token, primary uint64, hist []election.FailoverRecord, coord, failing bool, lease time.Time) Election {
	return Election{Bootstrapped: true, Primary: primary, Token: token, History: hist, Coordinator: coord, FailingOver: failing, LeaseUntil: lease}
}

func TestAPIErrorsAndStandbyLag(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveRequest("GET", "/api/v1/health", 200, time.Millisecond)
	m.ObserveRequest("POST", "/api/v1/cluster/switchover", 401, time.Millisecond)
	m.ObserveRequest("POST", "/api/v1/cluster/switchover", 401, time.Millisecond)
	m.ObserveRequest("GET", "unmatched", 404, time.Millisecond)
	want := `
# HELP ramd_api_errors_total REST API responses with an HTTP status of 400 or more, by route template and status code.
# TYPE ramd_api_errors_total counter
ramd_api_errors_total{code="401",route="/api/v1/cluster/switchover"} 2
ramd_api_errors_total{code="404",route="unmatched"} 1
`
	if err := testutil.CollectAndCompare(m.apiErrors, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	primary := pg.Health{Running: true, Accepting: true, Timeline: 2, Standbys: []pg.Standby{
		{ApplicationName: "n2", ReplayLagBytes: 100}, {ApplicationName: "n3", ReplayLagBytes: 0},
	}}
	m.UpdateCluster(1, nil, primary)
	if got := testutil.ToFloat64(m.standbyLag.WithLabelValues("n2")); got != 100 {
		t.Errorf("n2 lag = %v, want 100", got)
	}
	primary.Standbys = primary.Standbys[1:]
	m.UpdateCluster(1, nil, primary)
	if n := testutil.CollectAndCount(m.standbyLag); n != 1 {
		t.Errorf("standby series after n2 left = %d, want 1", n)
	}
	// A replica exports no per-standby series.
	m.UpdateCluster(1, nil, pg.Health{Running: true, Accepting: true, InRecovery: true, Standbys: primary.Standbys})
	if n := testutil.CollectAndCount(m.standbyLag); n != 0 {
		t.Errorf("standby series on a replica = %d, want 0", n)
	}
}

// TestCollectAndLint lints every collector on its own with
// testutil.CollectAndLint (TestLint gathers the whole registry).
func TestCollectAndLint(t *testing.T) {
	m := New(prometheus.NewPedanticRegistry())
	m.SetBuildInfo("dev")
	m.ObserveRequest("GET", "/api/v1/health", 500, time.Millisecond)
	m.UpdateCluster(1, nil, pg.Health{Running: true, Accepting: true, Standbys: []pg.Standby{{ApplicationName: "n2"}}})
	m.UpdateElection(Election{Token: 1, Primary: 1})
	populate(m)
	for _, c := range m.all {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			if allowedLint[p.Metric] && strings.Contains(p.Text, "_total") {
				continue
			}
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestNames(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ramd_api_requests_total", "ramd_api_errors_total", "ramd_postgresql_standby_lag_bytes",
		"ramd_cluster_leader_changes_total", "ramd_fencing_token", "ramd_coordinator",
		"ramd_failovers_total", "ramd_failover_duration_seconds", "ramd_lease_remaining_seconds",
		"ramd_mesh_members", "ramd_maintenance_mode", "ramd_postgresql_timeline", "ramd_coordination_unreachable",
		"go_goroutines", "process_cpu_seconds_total",
		"ramd_mesh_health_score", "ramd_postgresql_standby_lag_seconds", "ramd_backup_last_success_timestamp_seconds",
		"ramd_postgresql_connections", "ramd_postgresql_connections_total", "ramd_postgresql_max_connections",
		"ramd_postgresql_queries_total", "ramd_postgresql_transactions_committed_total",
		"ramd_postgresql_transactions_rolled_back_total", "ramd_postgresql_blocks_hit_total",
		"ramd_postgresql_blocks_read_total", "ramd_postgresql_deadlocks_total", "ramd_postgresql_checkpoints_total",
		"ramd_postgresql_wal_written_bytes_total", "ramd_postgresql_replication_slot_retained_bytes",
		"ramd_postgresql_database_size_bytes", "ramd_postgresql_stats_errors_total",
		"ramd_postgresql_stats_last_success_timestamp_seconds",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
}
