package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/internal/version"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/metrics"
	"github.com/ramd/ramd/pg"
)

// Options configures a Daemon.
type Options struct {
	// Config is the validated node configuration.
	Config *configs.Config
	// Logger receives JSON log lines; each component adds its name.
	Logger *slog.Logger
	// Registry receives the metrics; nil creates a fresh one.
	Registry *prometheus.Registry
	// ConfigSources says where each key's value came from (for GET
	// /config); nil: unknown (reported as default).
	ConfigSources map[string]string
	// ConfigPath is the file Reload re-reads ("": reload unsupported).
	ConfigPath string
	// Level, when set, is the logger's level, which Reload changes.
	Level *slog.LevelVar
	// LogFile, when set, is the [logging] file, reopened by Reload (SIGHUP)
	// for logrotate.
	LogFile LogReopener
}

// LogReopener reopens the log file at its configured path.
type LogReopener interface {
	Reopen() error
	Path() string
}

// Daemon is one running ramd node.
type Daemon struct {
	cfg *configs.Config
	// adminToken is the API's admin token (auth_token or its file).
	adminToken string
	// sources says where each configuration key's value came from.
	sources map[string]string
	// dynCfg is the effective configuration for the cluster overrides
	// dynFor (see effective).
	dynMu  sync.Mutex
	dynCfg *configs.Config
	dynFor map[string]string
	dynGen int
	// fileParams are postgresql.parameters as last reloaded from the file
	// (nil: d.cfg's); reloadGen counts reloads (both under dynMu).
	fileParams map[string]string
	reloadGen  int
	// configPath and level serve Reload.
	configPath string
	level      *slog.LevelVar
	logFile    LogReopener
	log        *slog.Logger
	// baseLog is the logger without the daemon's component attribute, for
	// the API's and the audit's own.
	baseLog *slog.Logger
	// nodeLog is the logger with node=<this node> and no component, from
	// which the election's, gate's and syncrep's loggers derive (slog
	// would repeat a "component" key, not replace it).
	nodeLog *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	pg      *pg.Manager
	mesh    *mesh.Mesh
	apiLn   net.Listener
	// apiTLS is the API's TLS configuration (nil: plain HTTP); peerHTTP
	// calls other nodes' APIs (see tls.go).
	apiTLS    *tls.Config
	peerHTTP  *http.Client
	metricsLn net.Listener
	// auditFile is [security] audit_log, open for appending (nil: unset).
	auditFile *os.File
	startedAt time.Time

	mu        sync.RWMutex
	health    pg.Health
	dataState mesh.DataState
	systemID  uint64
	phase     string // what the node is doing, for logs and status

	stopMode pg.StopMode

	failover *failoverLoop
	gate     gateRunner
	// writer is the writer token of the local WAL (see writertoken.go).
	writer *writerToken

	// backups is the backup and restore state (backup.go); restoring
	// keeps the loop's hands off PostgreSQL while a restore replaces the
	// data directory.
	backups   backupJobs
	restoring atomic.Bool
	// bgCtx ends at shutdown: background jobs (backups, restores) stop.
	bgCtx    context.Context
	bgCancel context.CancelFunc

	ident       identity
	resolved    bool // bootstrap decided: the data directory is ours to run
	lastStart   time.Time
	startFailed int
	// startFailing mirrors startFailed > 0 for the election's loop (a
	// fenced primary whose PostgreSQL does not start is not offered for
	// promotion again: fencedPrimary).
	startFailing atomic.Bool
	// lastRejoin and rejoinFailed pace rejoin attempts (rejoin.go) the
	// way lastStart and startFailed pace restarts.
	lastRejoin   time.Time
	rejoinFailed int
	// lastRole is the local PostgreSQL's role last logged (statelog.go).
	lastRole string
}

// New performs every check that can fail before the node joins anything:
// PostgreSQL binaries, the data directory's owner and contents, the state
// directory, and the API, metrics, gossip and PostgreSQL ports. A failure
// is returned as one error that says what to fix; nothing on disk is
// changed by a failing New.
func New(opts Options) (*Daemon, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("daemon: no configuration")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	// The daemon's, the election's and PostgreSQL's lines name this node
	// (mesh lines use "node" for the member they are about, and the API's
	// and audit's lines are about requests).
	nodeLog := log.With("node", cfg.Cluster.NodeName)
	d := &Daemon{cfg: cfg, log: nodeLog.With("component", "daemon"), nodeLog: nodeLog, baseLog: log, reg: reg, startedAt: time.Now(), stopMode: pg.StopFast}
	d.gate.d = d
	d.bgCtx, d.bgCancel = context.WithCancel(context.Background())
	tok, err := cfg.API.AdminToken()
	if err != nil {
		return nil, err
	}
	d.adminToken = tok
	d.sources = opts.ConfigSources
	d.configPath, d.level, d.logFile = opts.ConfigPath, opts.Level, opts.LogFile

	pgm, err := pg.New(pg.Config{
		BinDir:              cfg.PostgreSQL.BinDirectory,
		DataDir:             cfg.Cluster.DataDirectory,
		Host:                cfg.PostgreSQL.Host,
		Port:                cfg.PostgreSQL.Port,
		SocketDir:           cfg.PostgreSQL.SocketDirectory,
		Superuser:           cfg.PostgreSQL.User,
		SuperuserPassword:   cfg.PostgreSQL.Password,
		Database:            cfg.PostgreSQL.Database,
		ReplicationUser:     cfg.PostgreSQL.ReplicationUser,
		ReplicationPassword: cfg.PostgreSQL.ReplicationPassword,
		Parameters:          cfg.PostgreSQL.Parameters,
		Gate:                gateSettings(cfg.Failover.Fencing),
		HBANetworks:         cfg.PostgreSQL.HBANetworks,
		RunAsUser:           cfg.PostgreSQL.RunAsUser,
		ConnectTimeout:      cfg.PostgreSQL.ConnectTimeout.Duration,
		Logger:              nodeLog, // pg adds component=pg
	})
	if err != nil {
		return nil, err
	}
	d.pg = pgm
	ds, err := pgm.DataState()
	if err != nil {
		return nil, err
	}
	d.dataState = dataStateOf(ds)

	if err := os.MkdirAll(cfg.Cluster.StateDirectory, 0o755); err != nil {
		return nil, fmt.Errorf("daemon: cluster.state_directory: %w", err)
	}
	if d.ident, err = loadIdentity(cfg.Cluster.StateDirectory); err != nil {
		return nil, err
	}
	if d.ident.NodeID != 0 && d.ident.NodeID != cfg.Cluster.NodeID {
		return nil, fmt.Errorf("daemon: cluster.state_directory %s belongs to node %d, not node %d; give each node its own state directory", cfg.Cluster.StateDirectory, d.ident.NodeID, cfg.Cluster.NodeID)
	}
	d.writer = loadWriterToken(cfg.Cluster.StateDirectory, d.log)

	if ds == pg.StateInitialized && d.ident.SystemID != 0 {
		// A data directory that is not the one this node recorded is
		// refused before anything listens or joins, so nothing can
		// mistake the node for a running member.
		sysid, err := pgm.SystemID(context.Background())
		if err != nil {
			return nil, err
		}
		dec := election.Bootstrap(election.BootstrapInput{Self: cfg.Cluster.NodeID, HasData: true, LocalSystemID: sysid, KnownSystemID: d.ident.SystemID})
		if dec.Action == election.Refuse {
			return nil, fmt.Errorf("%w: %s (data directory %s)", errRefused, dec.Reason, cfg.Cluster.DataDirectory)
		}
	}

	if d.apiTLS, err = serverTLS(cfg.API); err != nil {
		return nil, err
	}
	if d.peerHTTP, err = peerHTTPClient(cfg.API); err != nil {
		return nil, err
	}

	ok := false
	defer func() {
		if !ok {
			d.closeListeners()
		}
	}()
	if d.apiLn, err = listen("api.port", cfg.API.Host, cfg.API.Port); err != nil {
		return nil, err
	}
	if d.auditFile, err = openAuditLog(cfg.Security.AuditLog); err != nil {
		return nil, err
	}
	if d.auditFile != nil {
		if st, err := d.auditFile.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			d.log.Warn("the audit log is readable or writable by others than its owner", "key", "security.audit_log",
				"path", cfg.Security.AuditLog, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		}
	}
	if cfg.Monitoring.PrometheusEnabled {
		if d.metricsLn, err = listen("monitoring.prometheus_port", cfg.API.Host, cfg.Monitoring.PrometheusPort); err != nil {
			return nil, err
		}
	}
	if _, running := pgm.Running(); !running {
		// Nothing of ours holds the PostgreSQL port, so whoever does would
		// make every start fail later with a less helpful message.
		ln, err := listen("postgresql.port", cfg.PostgreSQL.Host, cfg.PostgreSQL.Port)
		if err != nil {
			return nil, err
		}
		ln.Close()
	}

	d.metrics = metrics.New(reg)
	d.metrics.SetBuildInfo(version.Version)
	metrics.RegisterRuntime(reg)

	key, err := cfg.MeshKey()
	if err != nil {
		return nil, err
	}
	host, port := cfg.MeshAdvertiseHost(), cfg.Mesh.AdvertisePort
	m, err := mesh.New(mesh.Config{
		NodeName:         cfg.Cluster.NodeName,
		ClusterName:      cfg.Cluster.ClusterName,
		BindAddr:         cfg.Mesh.BindAddr,
		BindPort:         cfg.Mesh.BindPort,
		AdvertiseAddr:    host,
		AdvertisePort:    port,
		EncryptKey:       key,
		KeyringFile:      filepath.Join(cfg.Cluster.StateDirectory, keyringFileName),
		Seeds:            cfg.Cluster.Join,
		ProbeInterval:    cfg.Mesh.ProbeInterval.Duration,
		ProbeTimeout:     cfg.Mesh.ProbeTimeout.Duration,
		SuspicionMult:    cfg.Mesh.SuspicionMult,
		GossipInterval:   cfg.Mesh.GossipInterval.Duration,
		GossipNodes:      cfg.Mesh.GossipNodes,
		PushPullInterval: cfg.Mesh.PushPullInterval.Duration,
		RejoinInterval:   cfg.Mesh.RejoinInterval.Duration,
		Logger:           log.With("component", "mesh"),
	})
	if err != nil {
		if isAddrInUse(err) {
			return nil, fmt.Errorf("daemon: mesh.bind_port %d is already in use on %s: stop whatever listens there or change [mesh] bind_port", cfg.Mesh.BindPort, cfg.Mesh.BindAddr)
		}
		return nil, err
	}
	d.mesh = m
	if d.failover, err = newFailoverLoop(d); err != nil {
		_ = m.Shutdown()
		return nil, err
	}
	if !m.Encrypted() && !isLoopback(cfg.Mesh.BindAddr) {
		d.log.Warn("gossip is not encrypted: anyone who reaches the gossip port can join the cluster, forge node states and vote; set [mesh] encrypt_key (ramd keygen)", "bind_addr", cfg.Mesh.BindAddr)
	}
	ok = true
	return d, nil
}

// Run serves until ctx is cancelled, then shuts down cleanly: PostgreSQL
// stops with a fast shutdown and the node leaves the mesh.
func (d *Daemon) Run(ctx context.Context) error {
	handler, err := api.NewHandler(d.apiConfig())
	if err != nil {
		return err
	}
	apiSrv := api.NewServer(d.apiLn.Addr().String(), handler)
	// net/http's own errors (failed TLS handshakes: plain HTTP on the TLS
	// port, refused client certificates) as JSON lines, not on stderr.
	apiSrv.ErrorLog = slog.NewLogLogger(d.baseLog.With("component", "api").Handler(), slog.LevelInfo)
	if d.adminToken == "" {
		d.log.Info("API changes are disabled: set [api] auth_token (or auth_token_file) to allow switchover and other operations")
	}
	apiLn := d.apiLn
	if n := d.cfg.Security.MaxConnections; n > 0 {
		apiLn = api.LimitListener(apiLn, n)
	}
	errc := make(chan error, 2)
	go func() { errc <- serve(apiSrv, apiLn, d.apiTLS) }()
	var metricsSrv *http.Server
	if d.metricsLn != nil {
		metricsSrv = &http.Server{Handler: metrics.Handler(d.reg), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- serveHTTP(metricsSrv, d.metricsLn) }()
	}
	d.mesh.Start()
	fctx, fcancel := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() {
		defer close(fdone)
		d.failover.run(fctx)
	}()
	if d.metricsLn != nil {
		go d.runVitals(d.bgCtx)
	}
	d.log.Info("ramd started", "node_id", d.cfg.Cluster.NodeID,
		"version", version.Version, "api_url", d.cfg.APIURL(), "mesh_addr", d.mesh.LocalAddr(),
		"data_directory", d.cfg.Cluster.DataDirectory)

	changes, cancel := d.mesh.Subscribe()
	defer cancel()
	tick := time.NewTicker(d.cfg.PostgreSQL.HealthInterval.Duration)
	defer tick.Stop()
	runErr := d.step(ctx)
loop:
	for runErr == nil {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = fmt.Errorf("daemon: API server: %w", err)
			break loop
		case <-tick.C:
		case <-d.failover.wantChanged:
			// The election changed this node's role: act now, not at the
			// next health check (it is on the failover's critical path).
		case <-changes:
			// A peer's state changed: bootstrap wants to react at once
			// rather than at the next tick; afterwards the tick suffices.
			if d.isResolved() {
				continue
			}
		}
		runErr = d.step(ctx)
	}
	d.shutdown(apiSrv, metricsSrv, func() {
		fcancel()
		<-fdone
	})
	return runErr
}

// SetStopMode chooses how PostgreSQL is stopped when Run returns: fast (the
// default, on SIGTERM) or immediate (`ramd stop --force`, SIGQUIT).
func (d *Daemon) SetStopMode(m pg.StopMode) {
	d.mu.Lock()
	d.stopMode = m
	d.mu.Unlock()
}

func (d *Daemon) isResolved() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.resolved
}

func (d *Daemon) shutdown(apiSrv, metricsSrv *http.Server, stopElection func()) {
	d.log.Info("shutting down: stopping PostgreSQL (fast) and leaving the mesh")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The gate goes first: PostgreSQL's shutdown waits until every
	// connected WAL receiver confirmed the shutdown checkpoint, and in the
	// synchronous modes the gate confirms only what the replicas flushed,
	// which it learns over a SQL connection the shutdown has just
	// terminated. Without the gate no commit is acknowledged any more
	// (the fast shutdown ends the sessions waiting for one), which is also
	// the safe way round.
	d.gate.stop()
	d.bgCancel()
	if _, running := d.pg.Running(); running {
		d.mu.RLock()
		mode := d.stopMode
		d.mu.RUnlock()
		if err := d.pg.Stop(ctx, mode); err != nil {
			d.log.Error("stopping PostgreSQL failed", "error", err)
		}
	}
	// PostgreSQL is down (fast shutdown, no crash recovery needed later):
	// now give up the lease so the coordinator need not wait it out.
	stopElection()
	d.publish(pg.Health{CheckedAt: time.Now()})
	if err := d.mesh.Leave(2 * time.Second); err != nil {
		d.log.Warn("leaving the mesh failed", "error", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	_ = apiSrv.Shutdown(sctx)
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	if d.auditFile != nil {
		if err := d.auditFile.Close(); err != nil {
			d.log.Warn("closing the audit log failed", "path", d.auditFile.Name(), "error", err)
		}
	}
	_ = d.mesh.Shutdown()
	d.pg.Close()
	d.log.Info("ramd stopped")
}

func (d *Daemon) closeListeners() {
	if d.apiLn != nil {
		d.apiLn.Close()
	}
	if d.auditFile != nil {
		d.auditFile.Close()
	}
	if d.metricsLn != nil {
		d.metricsLn.Close()
	}
}

// apiConfig is the API's configuration: tokens from [api], limits and
// the audit log from [security].
func (d *Daemon) apiConfig() api.Config {
	sec := d.cfg.Security
	c := api.Config{
		Source:      d,
		Metrics:     d.metrics,
		Logger:      d.baseLog.With("component", "api"),
		AuditLogger: d.baseLog.With("component", "audit"),
		Auth: api.AuthConfig{AdminToken: d.adminToken, ReadToken: d.cfg.API.ReadToken,
			PublicHealthChecks: d.cfg.API.PublicHealthChecks},
		Limits: api.Limits{RateLimit: sec.RateLimit, BlockedIPs: sec.BlockedIPs, TrustedProxies: sec.TrustedProxies},
	}
	if d.auditFile != nil {
		c.AuditFile = d.auditFile
	}
	return c
}

// openAuditLog opens [security] audit_log for appending, creating it with
// mode 0600 (nil when unset).
func openAuditLog(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: security.audit_log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("daemon: security.audit_log: %w", err)
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		return nil, fmt.Errorf("daemon: security.audit_log %s is not a regular file", path)
	}
	return f, nil
}

func listen(key, host string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if isAddrInUse(err) {
			return nil, fmt.Errorf("daemon: %s %d is already in use on %s: stop whatever listens there or choose another port", key, port, host)
		}
		return nil, fmt.Errorf("daemon: %s: listen on %s: %w", key, addr, err)
	}
	return ln, nil
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve serves the API on ln, over TLS when tlsCfg is set. A client
// speaking plain HTTP to the TLS port gets a 400 from net/http's TLS
// handshake and nothing else.
func serve(srv *http.Server, ln net.Listener, tlsCfg *tls.Config) error {
	var err error
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func serveHTTP(srv *http.Server, ln net.Listener) error {
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func dataStateOf(s pg.State) mesh.DataState {
	if s == pg.StateInitialized {
		return mesh.DataReady
	}
	return mesh.DataEmpty
}
