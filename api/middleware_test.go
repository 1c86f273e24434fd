package api

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ramd/ramd/metrics"
)

func TestMetricsUseRouteTemplates(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := newTestAPI(t, 1, primaryHealth(), withMetrics(metrics.New(reg)))
	a.do("GET", "/api/v1/cluster/nodes/1")
	a.do("GET", "/api/v1/cluster/nodes/2")
	a.do("GET", "/api/v1/cluster/nodes/7")
	a.do("GET", "/api/v1/cluster/nodes/x")
	a.do("GET", "/replica?lag=1MB")
	a.do("OPTIONS", "/primary")
	a.do("DELETE", "/api/v1/cluster/status")
	a.do("GET", "/no/such/path/123")

	want := `
# HELP ramd_api_requests_total REST API requests by method, route template and HTTP status code.
# TYPE ramd_api_requests_total counter
ramd_api_requests_total{code="200",method="GET",route="/api/v1/cluster/nodes/{id}"} 2
ramd_api_requests_total{code="400",method="GET",route="/api/v1/cluster/nodes/{id}"} 1
ramd_api_requests_total{code="404",method="GET",route="/api/v1/cluster/nodes/{id}"} 1
ramd_api_requests_total{code="404",method="GET",route="unmatched"} 1
ramd_api_requests_total{code="405",method="DELETE",route="/api/v1/cluster/status"} 1
ramd_api_requests_total{code="200",method="OPTIONS",route="/primary"} 1
ramd_api_requests_total{code="503",method="GET",route="/replica"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ramd_api_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "ramd_api_request_duration_seconds"); n != 5 {
		t.Errorf("duration series = %d, want 5", n)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := newTestAPI(t, 1, primaryHealth(), withMetrics(metrics.New(reg)))
	a.src.set(func(f *fakeSource) { f.panicMembers = true })
	rec := a.do("GET", "/api/v1/cluster/status")
	if rec.Code != 500 {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	env := envelopeOf(t, rec)
	if *env.Message != "internal error" {
		t.Errorf("message %q", *env.Message)
	}
	if !strings.Contains(a.logs.String(), "fake source exploded") || !strings.Contains(a.logs.String(), "level=ERROR") {
		t.Errorf("panic not logged at error level:\n%s", a.logs)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "500", "/api/v1/cluster/status")); got != 1 {
		t.Errorf("500 not counted: %v", got)
	}
	// The handler keeps serving.
	a.src.set(func(f *fakeSource) { f.panicMembers = false })
	if rec := a.do("GET", "/api/v1/cluster/status"); rec.Code != 200 {
		t.Errorf("after panic: %d", rec.Code)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, code, route string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ramd_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["code"] == code && labels["route"] == route {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x", Help: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no ramd_api_requests_total{code=%q,route=%q}", code, route)
	return nil
}

func TestRequestsLoggedAtDebug(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	a.do("GET", "/api/v1/cluster/nodes/3")
	line := a.logs.String()
	for _, want := range []string{"level=DEBUG", "method=GET", "path=/api/v1/cluster/nodes/3", "route=/api/v1/cluster/nodes/{id}", "status=200"} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %q: %s", want, line)
		}
	}
}
