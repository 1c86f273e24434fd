package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
}

// allowedLint lists the lint problems accepted on purpose (see doc.go): the
// two node-count gauges keep their published "_total" names.
var allowedLint = map[string]bool{
	"ramd_cluster_nodes_total":         true,
	"ramd_cluster_healthy_nodes_total": true,
}

func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SetBuildInfo("dev")
	m.ObserveRequest("GET", "/api/v1/health", 200, time.Millisecond)
	m.UpdateCluster(1, []mesh.Member{member(1, mesh.RolePrimary, mesh.Alive, true, 0)}, pg.Health{Running: true, Accepting: true})
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
