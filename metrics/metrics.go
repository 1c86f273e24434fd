package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// Metrics holds all of ramd's own collectors.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	nodesTotal   prometheus.Gauge
	healthyNodes prometheus.Gauge
	nodeRole     *prometheus.GaugeVec
	meshMembers  *prometheus.GaugeVec

	pgUp       prometheus.Gauge
	lagSeconds prometheus.Gauge
	lagBytes   prometheus.Gauge
	timeline   prometheus.Gauge

	buildInfo *prometheus.GaugeVec
}

// requestBuckets span a cached in-memory answer (tens of microseconds) to a
// request stuck behind a slow client (a second). The API never waits on
// PostgreSQL, so anything past 1 s lands in +Inf and is itself the signal.
var requestBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// roles and livenesses are pre-created so that a scrape always shows every
// series: an absent series cannot be told from a broken exporter, and
// "role == primary" alerts need an explicit 0.
var (
	roles      = []mesh.Role{mesh.RolePrimary, mesh.RoleReplica, mesh.RoleUnknown}
	livenesses = []mesh.Liveness{mesh.Alive, mesh.Suspect, mesh.Dead, mesh.Left}
)

// New creates the collectors and registers them on reg. It panics if a
// collector is already registered there, like prometheus.MustRegister: that
// is a wiring bug, not a runtime condition.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ramd_api_requests_total",
			Help: "REST API requests by method, route template and HTTP status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ramd_api_request_duration_seconds",
			Help:    "REST API request latency by method and route template.",
			Buckets: requestBuckets,
		}, []string{"method", "route"}),
		nodesTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_cluster_nodes_total",
			Help: "Cluster members known to this node that have not left.",
		}),
		healthyNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_cluster_healthy_nodes_total",
			Help: "Cluster members that are alive and report a healthy PostgreSQL.",
		}),
		nodeRole: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ramd_node_role",
			Help: "This node's PostgreSQL role from the last local health check (1 for the current role, 0 otherwise).",
		}, []string{"role"}),
		meshMembers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ramd_mesh_members",
			Help: "Cluster members by failure-detector state.",
		}, []string{"state"}),
		pgUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_postgresql_up",
			Help: "1 if the local PostgreSQL is running and accepting connections, 0 otherwise.",
		}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_postgresql_replication_lag_seconds",
			Help: "This node's replay lag behind its primary in seconds (0 on a primary).",
		}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_postgresql_replication_lag_bytes",
			Help: "This node's distance behind its primary in bytes of WAL (0 on a primary).",
		}),
		timeline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_postgresql_timeline",
			Help: "The local PostgreSQL's timeline from the last health check.",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ramd_build_info",
			Help: "Always 1; the version label says which ramd release is running.",
		}, []string{"version"}),
	}
	reg.MustRegister(
		m.requests, m.duration,
		m.nodesTotal, m.healthyNodes, m.nodeRole, m.meshMembers,
		m.pgUp, m.lagSeconds, m.lagBytes, m.timeline,
		m.buildInfo,
	)
	for _, r := range roles {
		m.nodeRole.WithLabelValues(string(r)).Set(0)
	}
	for _, l := range livenesses {
		m.meshMembers.WithLabelValues(string(l)).Set(0)
	}
	return m
}

// RegisterRuntime registers client_golang's Go runtime and process
// collectors on reg. Registering them twice is harmless (the second call is
// ignored) because several components may each ask for them.
func RegisterRuntime(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			if _, ok := err.(prometheus.AlreadyRegisteredError); ok {
				continue
			}
			panic(err)
		}
	}
}

// SetBuildInfo publishes ramd_build_info{version} = 1. Earlier versions are
// dropped so that exactly one series exists.
func (m *Metrics) SetBuildInfo(version string) {
	if m == nil {
		return
	}
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version).Set(1)
}

// ObserveRequest records one API request. route must be a route template
// ("/api/v1/cluster/nodes/{id}"), never a raw path, or every distinct path
// becomes a series.
func (m *Metrics) ObserveRequest(method, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	method = normalizeMethod(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// normalizeMethod bounds the method label: a client can send any token as a
// method, and each would otherwise create new series.
func normalizeMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
		http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// UpdateCluster refreshes the cluster and local PostgreSQL gauges. self is
// this node's id; members is the gossiped view (self included); local is the
// last local health check.
func (m *Metrics) UpdateCluster(self int, members []mesh.Member, local pg.Health) {
	if m == nil {
		return
	}
	var known, healthy int
	byLiveness := make(map[mesh.Liveness]int, len(livenesses))
	var selfState *mesh.NodeState
	for i := range members {
		mb := &members[i]
		byLiveness[mb.Liveness]++
		if mb.Liveness != mesh.Left {
			known++
		}
		if mb.Liveness == mesh.Alive && mb.State.Healthy {
			healthy++
		}
		// The id is authoritative; the Self flag covers a caller that does
		// not know its id yet.
		if mb.State.NodeID == self || (selfState == nil && mb.Self) {
			selfState = &mb.State
		}
	}
	m.nodesTotal.Set(float64(known))
	m.healthyNodes.Set(float64(healthy))
	for _, l := range livenesses {
		m.meshMembers.WithLabelValues(string(l)).Set(float64(byLiveness[l]))
	}

	role := localRole(local)
	for _, r := range roles {
		v := 0.0
		if r == role {
			v = 1
		}
		m.nodeRole.WithLabelValues(string(r)).Set(v)
	}
	m.pgUp.Set(boolFloat(local.Running && local.Accepting))
	m.timeline.Set(float64(local.Timeline))

	// Lag is only meaningful on a replica; a primary (or a stopped server)
	// reports 0 rather than a stale value from before a promotion.
	var lagBytes uint64
	var lagSeconds float64
	if role == mesh.RoleReplica {
		lagSeconds = local.LagSeconds
		// pg.Health has no byte lag (it needs the primary's position); the
		// daemon computes it and gossips it in this node's own state.
		if selfState != nil {
			lagBytes = selfState.LagBytes
		}
	}
	m.lagSeconds.Set(lagSeconds)
	m.lagBytes.Set(float64(lagBytes))
}

// localRole is this node's role by pg.Health.Role, the one rule every
// component reports.
func localRole(h pg.Health) mesh.Role { return mesh.Role(h.Role()) }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the metrics gathered from g in the Prometheus text format.
// A failing collector does not blank the scrape (ContinueOnError), a few
// concurrent scrapes are enough for any real setup, and a scrape that takes
// longer than the usual Prometheus timeout is cut off.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 8,
		Timeout:             10 * time.Second,
	})
}
