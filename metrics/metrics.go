package metrics

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ramd/ramd/election"
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

	apiErrors  *prometheus.CounterVec
	standbyLag *prometheus.GaugeVec

	leaderChanges    prometheus.Counter
	fencingToken     prometheus.Gauge
	coordinator      prometheus.Gauge
	coordDown        prometheus.Gauge
	maintenance      prometheus.Gauge
	failovers        *prometheus.CounterVec
	failoverDuration prometheus.Histogram
	leaseRemaining   prometheus.GaugeFunc

	// Added for incidents: memberlist's health, per-standby lag in
	// seconds, the last backup, and PostgreSQL's vital signs (postgres.go).
	meshHealth        prometheus.Gauge
	standbyLagSeconds *prometheus.GaugeVec
	lastBackup        prometheus.Gauge
	vitals            *vitals

	// all lists every collector New registered (Names reads their
	// descriptions).
	all []prometheus.Collector

	// leaseUntil is the end of this node's primary lease in Unix
	// nanoseconds (0: none); ramd_lease_remaining_seconds is computed from
	// it at scrape time, so a stalled election loop cannot leave a stale
	// positive value behind.
	leaseUntil atomic.Int64
	now        func() time.Time

	// mu guards the election bookkeeping below (UpdateElection).
	mu            sync.Mutex
	historySeen   int
	primarySeen   uint64
	failoverStart time.Time
	failoverToken uint64
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

// failoverBuckets span a planned switchover (a few hundred milliseconds)
// to an unplanned failover that waits out a lease (seconds) and a stuck
// one (a minute).
var failoverBuckets = []float64{0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60}

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
	m.apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ramd_api_errors_total",
		Help: "REST API responses with an HTTP status of 400 or more, by route template and status code.",
	}, []string{"route", "code"})
	m.standbyLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ramd_postgresql_standby_lag_bytes",
		Help: "On the primary: each connected standby's replay distance behind the primary's current WAL position, in bytes (pg_stat_replication; one series per standby application_name, none elsewhere).",
	}, []string{"standby"})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ramd_cluster_leader_changes_total",
		Help: "Changes of the cluster's primary this process saw applied (the primary it found at start is not counted).",
	})
	m.fencingToken = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_fencing_token",
		Help: "The fencing token of the current primary in the applied cluster state (0 before bootstrap).",
	})
	m.coordinator = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_coordinator",
		Help: "1 when this node is the coordinator that runs failovers (quorum: the raft leader; pglock: the holder of the coordination database's advisory lock); 0 otherwise.",
	})
	m.coordDown = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_coordination_unreachable",
		Help: "election = pglock: 1 while this node cannot reach the coordination database (no failover can happen, and a primary's lease runs out); 0 otherwise, and always 0 with the quorum backend.",
	})
	m.maintenance = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_maintenance_mode",
		Help: "1 when maintenance mode (automatic failover off) is on in the applied cluster state.",
	})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ramd_failovers_total",
		Help: "Changes of primary recorded in the replicated failover history, by reason class (failure, switchover, manual, release, bootstrap, other).",
	}, []string{"reason"})
	m.failoverDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ramd_failover_duration_seconds",
		Help:    "On the coordinator: time from starting a failover (the failure verdict, release, switchover or manual request) to the promotion being applied.",
		Buckets: failoverBuckets,
	})
	m.leaseRemaining = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ramd_lease_remaining_seconds",
		Help: "On the primary: seconds left on its quorum-granted lease; 0 on other nodes.",
	}, m.leaseLeft)
	m.meshHealth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_mesh_health_score",
		Help: "memberlist's awareness score for this node: 0 is healthy; higher means this node itself is slow to process gossip (CPU starvation, network trouble), so its own failure verdicts are less trustworthy.",
	})
	m.standbyLagSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ramd_postgresql_standby_lag_seconds",
		Help: "On the primary: each connected standby's replay lag in seconds (pg_stat_replication.replay_lag; one series per standby application_name, none elsewhere).",
	}, []string{"standby"})
	m.lastBackup = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ramd_backup_last_success_timestamp_seconds",
		Help: "When the newest successful base backup this node holds finished (Unix time; 0: none).",
	})
	m.vitals = newVitals()
	m.now = time.Now
	m.all = []prometheus.Collector{
		m.requests, m.duration, m.apiErrors,
		m.nodesTotal, m.healthyNodes, m.nodeRole, m.meshMembers,
		m.pgUp, m.lagSeconds, m.lagBytes, m.timeline, m.standbyLag,
		m.leaderChanges, m.fencingToken, m.coordinator, m.maintenance, m.coordDown,
		m.failovers, m.failoverDuration, m.leaseRemaining,
		m.buildInfo,
		m.meshHealth, m.standbyLagSeconds, m.lastBackup, m.vitals,
	}
	reg.MustRegister(m.all...)
	for _, c := range FailoverReasons {
		m.failovers.WithLabelValues(c).Add(0)
	}
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
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(method, route, c).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
	if code >= 400 {
		m.apiErrors.WithLabelValues(route, c).Inc()
	}
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

	// Per-standby lag exists only on a primary, for the standbys connected
	// now: a standby that disconnected loses its series rather than keep a
	// stale value (the mesh and role metrics say where it went).
	m.standbyLag.Reset()
	m.standbyLagSeconds.Reset()
	if role == mesh.RolePrimary {
		for _, sb := range local.Standbys {
			if sb.ApplicationName != "" {
				m.standbyLag.WithLabelValues(sb.ApplicationName).Set(float64(sb.ReplayLagBytes))
				m.standbyLagSeconds.WithLabelValues(sb.ApplicationName).Set(sb.ReplayLagSeconds)
			}
		}
	}
}

// Election is what the election loop reports to UpdateElection.
type Election struct {
	// Bootstrapped, Primary, Token, Maintenance and History are the
	// applied cluster state.
	Bootstrapped bool
	Primary      uint64
	Token        uint64
	Maintenance  bool
	History      []election.FailoverRecord
	// Coordinator: this node is the raft leader.
	Coordinator bool
	// FailingOver: this node, as coordinator, is running a failover now.
	FailingOver bool
	// CoordinationUnreachable (pglock): the coordination database does
	// not answer.
	CoordinationUnreachable bool
	// LeaseUntil is the end of this node's primary lease (zero: none).
	LeaseUntil time.Time
}

// FailoverReasons are the values of ramd_failovers_total's reason label,
// all pre-created at zero. ReasonClass maps a history record's reason onto
// them.
var FailoverReasons = []string{"failure", "switchover", "manual", "release", "bootstrap", "other"}

// ReasonClass maps the reason text of a promotion in the failover history
// onto one of FailoverReasons:
//
//	"bootstrap"                          → bootstrap (the first primary)
//	"switchover from N"                  → switchover (planned, also scheduled)
//	"manual failover to N ..."           → manual (ramctl failover)
//	"primary N released its lease"       → release (a clean stop, or a primary
//	                                       that could not serve gave up)
//	"resuming: ..."                      → other (a coordinator finishing a
//	                                       failover an earlier one started; the
//	                                       original cause is not recorded)
//	anything else (the failure detector's verdicts: "primary N is dead",
//	"postgresql on primary N is not running for ...", ...) → failure
func ReasonClass(reason string) string {
	switch {
	case reason == "bootstrap":
		return "bootstrap"
	case strings.HasPrefix(reason, "switchover from "):
		return "switchover"
	case strings.HasPrefix(reason, "manual failover"):
		return "manual"
	case strings.HasPrefix(reason, "primary ") && strings.HasSuffix(reason, " released its lease"):
		return "release"
	case strings.HasPrefix(reason, "resuming:"):
		return "other"
	case reason == "":
		return "other"
	}
	return "failure"
}

// UpdateElection refreshes the election metrics from the applied cluster
// state. It is cheap (no I/O, no allocation once the history was counted)
// and meant to be called by the election loop after every tick and every
// applied state.
//
// ramd_failovers_total counts the replicated history, which every node
// holds in full and which survives restarts: the counter resumes at the
// same value after a restart, and all nodes agree on it.
// ramd_failover_duration_seconds is observed here too: from the first
// update with FailingOver set to the first update whose token is higher
// than the one the failover started under. A failover abandoned (leadership
// lost, maintenance) is not observed.
func (m *Metrics) UpdateElection(e Election) {
	if m == nil {
		return
	}
	now := m.now()
	if e.LeaseUntil.IsZero() {
		m.leaseUntil.Store(0)
	} else {
		m.leaseUntil.Store(e.LeaseUntil.UnixNano())
	}
	m.fencingToken.Set(float64(e.Token))
	m.coordinator.Set(boolFloat(e.Coordinator))
	m.coordDown.Set(boolFloat(e.CoordinationUnreachable))
	m.maintenance.Set(boolFloat(e.Maintenance))

	m.mu.Lock()
	defer m.mu.Unlock()
	if len(e.History) < m.historySeen {
		m.historySeen = 0 // a different history (should not happen): recount
	}
	for _, r := range e.History[m.historySeen:] {
		m.failovers.WithLabelValues(ReasonClass(r.Reason)).Inc()
	}
	m.historySeen = len(e.History)
	if e.Primary != 0 {
		if m.primarySeen != 0 && m.primarySeen != e.Primary {
			m.leaderChanges.Inc()
		}
		m.primarySeen = e.Primary
	}
	switch {
	case !m.failoverStart.IsZero() && e.Token > m.failoverToken:
		m.failoverDuration.Observe(now.Sub(m.failoverStart).Seconds())
		m.failoverStart = time.Time{}
	case !e.FailingOver:
		m.failoverStart = time.Time{}
	}
	if e.FailingOver && m.failoverStart.IsZero() {
		m.failoverStart, m.failoverToken = now, e.Token
	}
}

// SetMeshHealth publishes memberlist's awareness score (0: healthy).
func (m *Metrics) SetMeshHealth(score int) {
	if m == nil {
		return
	}
	m.meshHealth.Set(float64(score))
}

// SetLastBackup publishes the finish time of the newest successful backup
// (zero: none).
func (m *Metrics) SetLastBackup(t time.Time) {
	if m == nil {
		return
	}
	if t.IsZero() {
		m.lastBackup.Set(0)
		return
	}
	m.lastBackup.Set(float64(t.UnixNano()) / 1e9)
}

// leaseLeft is ramd_lease_remaining_seconds, computed at scrape time.
func (m *Metrics) leaseLeft() float64 {
	until := m.leaseUntil.Load()
	if until == 0 {
		return 0
	}
	return max(0, time.Duration(until-m.now().UnixNano()).Seconds())
}

// descName pulls the metric name out of a Desc (client_golang offers no
// accessor; its String form is stable: Desc{fqName: "name", ...}).
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Names returns every metric name the daemon exports: ramd's own (from
// the collectors' descriptions, so a vector without series yet is
// included) and client_golang's runtime and process collectors (from a
// gather). A histogram appears under its base name; its series carry
// _bucket, _sum and _count.
func Names() ([]string, error) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	RegisterRuntime(reg)
	seen := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range m.all {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		if sm := descName.FindStringSubmatch(d.String()); sm != nil {
			seen[sm[1]] = true
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
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
