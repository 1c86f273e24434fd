package api

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ramd/ramd/metrics"
)

// BenchmarkClusterStatus measures GET /api/v1/cluster/status through the
// whole in-process handler (middleware, router, metrics) on a 3-member
// view:
//   - rebuild: the cache always expired, so every request copies, sorts
//     and encodes the view (the worst case, once per view change or TTL);
//   - fingerprint: a plain Source, the cache keyed on the copied view;
//   - versioned: a Source with a view version, a hit copies nothing.
func BenchmarkClusterStatus(b *testing.B) {
	run := func(b *testing.B, expire bool, opts ...apiOption) {
		reg := prometheus.NewRegistry()
		opts = append(opts, quiet(), withMetrics(metrics.New(reg)))
		a := newTestAPI(b, 2, replicaHealth(), opts...)
		a.src.set(func(f *fakeSource) { f.node.Tags = map[string]string{"zone": "a"} })
		req := httptest.NewRequest("GET", "/api/v1/cluster/status", nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if expire {
				a.clock.Advance(statusCacheTTL)
			}
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	}
	b.Run("rebuild", func(b *testing.B) { run(b, true) })
	b.Run("fingerprint", func(b *testing.B) { run(b, false) })
	b.Run("versioned", func(b *testing.B) { run(b, false, versioned(&versionedSource{version: 1})) })
}

// BenchmarkChecks measures the HAProxy hot path: OPTIONS /primary and GET
// /replica?lag=.
func BenchmarkChecks(b *testing.B) {
	for _, tc := range []struct{ method, target string }{
		{"OPTIONS", "/primary"},
		{"GET", "/replica?lag=16MB"},
	} {
		b.Run(tc.method+tc.target, func(b *testing.B) {
			a := newTestAPI(b, 2, replicaHealth(), quiet())
			req := httptest.NewRequest(tc.method, tc.target, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				a.h.ServeHTTP(rec, req)
			}
		})
	}
}
