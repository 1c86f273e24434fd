package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/metrics"
	"github.com/ramd/ramd/pg"
)

// Source is what the API reads. Every method must answer from memory
// (a copy of the current view) without blocking on PostgreSQL or the
// network: the API promises that no request waits on either.
type Source interface {
	// Members is the whole cluster including this node (Self=true), as
	// gossiped. The API never modifies the returned slice.
	Members() []mesh.Member
	// LocalHealth is the last local PostgreSQL check.
	LocalHealth() pg.Health
	// Node is static information about this daemon.
	Node() NodeInfo
}

// ViewVersioner may be implemented by a Source whose view carries a version
// that changes whenever Members would return something different. The API
// then checks its cached cluster status against the version without even
// copying the view; without it, the cache is keyed on a fingerprint of the
// copied view.
type ViewVersioner interface {
	ViewVersion() uint64
}

// LeaseHolder may be implemented by a Source that takes part in the
// election: a primary is reported writable only while HoldsLease is true.
type LeaseHolder interface {
	HoldsLease() bool
}

// ElectionSource may be implemented by a Source that takes part in the
// election; its replicated decision then appears in /cluster/status.
type ElectionSource interface {
	Election() ElectionInfo
}

// ElectionInfo is the applied election state as this node knows it.
type ElectionInfo struct {
	Bootstrapped      bool
	PrimaryNodeID     int
	Token             uint64
	CoordinatorNodeID int
	Phase             string
	Maintenance       bool
	// SyncMode is the applied synchronous mode ("off", "quorum",
	// "strict"); SyncStandbys the node ids of which SyncCount must flush a
	// commit before it is acknowledged (empty: every member but the
	// primary).
	SyncMode     string
	SyncStandbys []int
	SyncCount    int
	// Detached lists the replicas detached from streaming.
	Detached []int
	// Switchover is the pending switchover, if any.
	Switchover *PendingSwitchover
	// Backend is the election backend ("quorum" or "pglock").
	Backend string
	// CoordinationUnreachable (pglock) says why the coordination database
	// counts as unreachable — no failover can happen meanwhile; "" while
	// it answers.
	CoordinationUnreachable string
}

// PendingSwitchover is a requested switchover not carried out yet.
type PendingSwitchover struct {
	From        int    `json:"from"`
	To          int    `json:"to,omitempty"`
	ScheduledAt string `json:"scheduled_at,omitempty"`
}

// NodeInfo is static information about this daemon.
type NodeInfo struct {
	NodeID        int
	Name          string
	ClusterName   string
	Version       string
	DataDirectory string
	APIURL        string
	MeshAddr      string
	PGHost        string
	PGPort        int
	StartedAt     time.Time
	Tags          map[string]string
}

// Config configures NewHandler.
type Config struct {
	Source Source
	// Metrics records request counts and latencies; nil disables them.
	Metrics *metrics.Metrics
	// Logger receives request logs at debug level and panics at error
	// level; nil discards them.
	Logger *slog.Logger
	// Now is the clock for timestamps and ages; nil means time.Now.
	Now func() time.Time
	// Auth sets the tokens; the zero value refuses every change and
	// leaves reads open.
	Auth AuthConfig
	// Limits sets rate limits, blocked addresses and trusted proxies; the
	// zero value limits nothing. (The connection cap is LimitListener.)
	Limits Limits
	// AuditLogger receives one info line per mutating request (any method
	// but GET, HEAD and OPTIONS, refused ones included): who (the token
	// presented: admin, read or none), client, method, path, status,
	// duration. nil means Logger.
	AuditLogger *slog.Logger
	// AuditFile, when set, also receives each of those records as one JSON
	// line, written with a single Write call. The caller opens (append
	// only) and closes it.
	AuditFile io.Writer
}

// statusCacheTTL bounds how stale a cached cluster status may be. Only
// last_seen_ms and the timestamp drift while the view stands still, and a
// few milliseconds of drift are invisible next to gossip intervals.
const statusCacheTTL = 5 * time.Millisecond

type server struct {
	src       Source
	versioner ViewVersioner // nil when the Source has no view version
	metrics   *metrics.Metrics
	log       *slog.Logger
	now       func() time.Time
	auth      AuthConfig
	// adminDigest and readDigest are the tokens' SHA-256 (nil: not set).
	adminDigest, readDigest []byte

	// Limits: trusted proxies, blocked prefixes, the rate limiter (nil:
	// off) and the paths it exempts. guarded: any of blocked or limiter is
	// set, so admit must find the client.
	trusted, blocked []netip.Prefix
	limiter          *rateLimiter
	exempt           map[string]bool
	guarded          bool
	auditor          *auditor

	// router is the route table, kept for the route-table test.
	router *mux.Router

	bufs        sync.Pool
	statusCache atomic.Pointer[cachedBody]
}

// NewHandler builds the API's HTTP handler.
func NewHandler(cfg Config) (http.Handler, error) {
	_, h, err := newServer(cfg)
	return h, err
}

func newServer(cfg Config) (*server, http.Handler, error) {
	if cfg.Source == nil {
		return nil, nil, errors.New("api: Config.Source is required")
	}
	if cfg.Limits.RateLimit < 0 {
		return nil, nil, fmt.Errorf("api: Limits.RateLimit %d is negative", cfg.Limits.RateLimit)
	}
	s := &server{
		src:     cfg.Source,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		now:     cfg.Now,
		auth:    cfg.Auth,
	}
	s.versioner, _ = cfg.Source.(ViewVersioner)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.trusted, err = parsePrefixes("TrustedProxies", cfg.Limits.TrustedProxies); err != nil {
		return nil, nil, err
	}
	if s.blocked, err = parsePrefixes("BlockedIPs", cfg.Limits.BlockedIPs); err != nil {
		return nil, nil, err
	}
	if cfg.Limits.RateLimit > 0 {
		s.limiter = newRateLimiter(cfg.Limits.RateLimit, s.now)
	}
	s.guarded = len(s.blocked) > 0 || s.limiter != nil
	s.exempt = map[string]bool{"/api/v1/health": true}
	for _, c := range s.checks() {
		s.exempt[c.path] = true
	}
	s.auditor = &auditor{log: cfg.AuditLogger, errLog: s.log, w: cfg.AuditFile}
	if s.auditor.log == nil {
		s.auditor.log = s.log
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.adminDigest, s.readDigest = digest(cfg.Auth.AdminToken), digest(cfg.Auth.ReadToken)
	return s, s.instrument(s.routes()), nil
}

// routes wires every endpoint. Each route is registered without a method
// matcher and dispatches methods itself, so that a wrong method gets a 405
// envelope with an exact Allow header and is still counted under its route
// template.
func (s *server) routes() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(s.notFound)

	v1 := r.PathPrefix("/api/v1").Subrouter()
	s.read(v1, "/api/v1", "/health", s.handleHealth)
	s.read(v1, "/api/v1", "/node/info", s.handleNodeInfo)
	s.read(v1, "/api/v1", "/node/health", s.handleNodeHealth)
	s.read(v1, "/api/v1", "/cluster/status", s.handleClusterStatus)
	s.methods(v1, "/api/v1", "/cluster/nodes/{id}", map[string]http.HandlerFunc{
		http.MethodGet: s.handleClusterNode, http.MethodDelete: s.handleRemoveNode})
	s.methods(v1, "/api/v1", "/cluster/add-node", map[string]http.HandlerFunc{http.MethodPost: s.handleAddNode})
	s.methods(v1, "/api/v1", "/cluster/remove-node", map[string]http.HandlerFunc{http.MethodDelete: s.handleRemoveNode})
	s.read(v1, "/api/v1", "/cluster/health", s.handleClusterHealth)
	s.read(v1, "/api/v1", "/replication/status", s.handleReplicationStatus)
	s.read(v1, "/api/v1", "/cluster/history", s.handleHistory)
	s.methods(v1, "/api/v1", "/cluster/switchover", map[string]http.HandlerFunc{
		http.MethodPost: s.handleSwitchover, http.MethodDelete: s.handleCancelSwitchover})
	s.methods(v1, "/api/v1", "/cluster/failover", map[string]http.HandlerFunc{http.MethodPost: s.handleFailover})
	s.methods(v1, "/api/v1", "/replication/stop", map[string]http.HandlerFunc{http.MethodPost: s.handleReplication(false)})
	s.methods(v1, "/api/v1", "/replication/start", map[string]http.HandlerFunc{http.MethodPost: s.handleReplication(true)})
	s.methods(v1, "/api/v1", "/cluster/maintenance", map[string]http.HandlerFunc{
		http.MethodGet: s.handleGetMaintenance, http.MethodPost: s.handleSetMaintenance})
	s.backupRoutes(v1)
	s.configRoutes(v1)
	s.keyRoutes(v1)
	s.uiRoutes(r)

	for _, c := range s.checks() {
		s.check(r, c)
	}
	s.router = r
	return r
}

// read registers a GET/HEAD endpoint.
func (s *server) read(r *mux.Router, prefix, path string, h http.HandlerFunc) {
	route := prefix + path
	r.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setRoute(w, route)
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			if s.allow(w, req, accessRead, path == "/health") {
				h(w, req)
			}
		default:
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, req, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: GET, HEAD)", req.Method, route)
		}
	}))
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}

// NewServer returns an http.Server for h with timeouts that keep slow or
// idle clients from holding connections: the API answers from memory in
// microseconds, so generous-but-finite limits cost nothing.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
