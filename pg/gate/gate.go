package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd/ramd/pg"
)

// LSN is a WAL position (pg.LSN, so the daemon's metrics and the gate's
// speak the same type).
type LSN = pg.LSN

// DefaultAppName is the application_name the gate connects with, and so
// the name synchronous_standby_names must list.
const DefaultAppName = "ramd_gate"

// DefaultStatusInterval is how often the gate polls Allowed (and Ceiling)
// while a position is waiting for them. New WAL is confirmed at once,
// without waiting for this tick, so it only bounds how long a commit that
// arrived while confirmation was withheld waits after the lease comes back
// (unless the daemon calls Kick). 10 ms is 100 cheap calls a second.
const DefaultStatusInterval = 10 * time.Millisecond

// heartbeatInterval: a status update goes out at least this often, even
// when nothing new may be confirmed (it then repeats the old position), so
// that wal_sender_timeout (default 60 s) never ends the connection of a
// gate that is merely withholding. A frozen gate sends nothing and is cut
// after wal_sender_timeout: that is fine, commits keep waiting either way.
const heartbeatInterval = time.Second

// Reconnect backoff: short at first, because while the gate is away no
// commit completes; capped so that a server that is down is not hammered.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
)

// defaultConnectTimeout bounds a dial when the connection string sets no
// connect_timeout.
const defaultConnectTimeout = 5 * time.Second

// appNameRE: names that need no quoting anywhere, that PostgreSQL keeps
// verbatim (application_name is cut at 63 bytes) and that cannot be "*"
// (which would match every standby).
var appNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Config configures a Gate.
type Config struct {
	// ConnString is a replication connection to the local primary, e.g.
	// "host=<socketdir> port=<port> user=postgres replication=true"
	// (physical replication: replication=true, not database). The unix
	// socket is preferred: no password, no network between the gate and
	// the server it fences. An application_name in it must equal AppName.
	ConnString string
	// AppName is the application_name the gate connects with: what
	// synchronous_standby_names names. Default DefaultAppName.
	AppName string
	// Allowed is the lease check. The gate confirms WAL positions only
	// while it returns true, and calls it immediately before every
	// confirmation, on the commit path: it must be cheap and must not
	// block (an atomic load compared with the clock). It should turn false
	// a safety margin before the lease expires, and its clock must not
	// stand still while the host does (see doc.go). Required: there is no
	// safe default.
	Allowed func() bool
	// Ceiling, when set, caps what may be confirmed (for the synchronous
	// modes: the position enough replicas have flushed; see doc.go). It is
	// given the end of the WAL received, so that it knows what the gate is
	// waiting for (and may, say, poll faster until it can allow it); call
	// Kick when the cap rises. Nil: no cap.
	Ceiling func(received LSN) LSN
	// StatusInterval is how often a withheld position is re-checked.
	// Default DefaultStatusInterval.
	StatusInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Gate is a physical replication client of the local primary that
// confirms the WAL it receives only while the lease is held. See doc.go.
type Gate struct {
	cfg     Config
	connCfg *pgconn.Config
	log     *slog.Logger

	// kick wakes the stream loop to re-check Allowed now (buffer 1: kicks
	// coalesce).
	kick chan struct{}

	confirmed atomic.Uint64 // last position sent as flushed, any connection
	connected atomic.Bool   // streaming right now
	running   atomic.Bool   // Run is active (one at a time)

	// beforeConfirm, when set (tests), runs under the stream's lock at the
	// start of every confirmation: a hook that blocks simulates a frozen
	// daemon, nothing confirms until it returns.
	hookMu        sync.Mutex
	beforeConfirm func()
}

// New checks cfg and returns a Gate; it does not connect (Run does).
func New(cfg Config) (*Gate, error) {
	if cfg.Allowed == nil {
		return nil, errors.New("gate: Config.Allowed is required")
	}
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if !appNameRE.MatchString(cfg.AppName) {
		return nil, fmt.Errorf("gate: application name %q: want lower-case letters, digits and _ (at most 63, starting with a letter)", cfg.AppName)
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	connCfg, err := pgconn.ParseConfig(cfg.ConnString)
	if err != nil {
		return nil, fmt.Errorf("gate: connection string: %w", err)
	}
	// A logical (replication=database) or plain connection cannot stream
	// physical WAL; fail now rather than retry forever.
	switch connCfg.RuntimeParams["replication"] {
	case "true", "on", "yes", "1":
	default:
		return nil, errors.New("gate: connection string must set replication=true (a physical replication connection)")
	}
	// A different application_name would leave synchronous_standby_names
	// naming nobody: every commit would hang with no hint why.
	if app, ok := connCfg.RuntimeParams["application_name"]; ok && app != cfg.AppName {
		return nil, fmt.Errorf("gate: connection string has application_name=%q but AppName is %q", app, cfg.AppName)
	}
	connCfg.RuntimeParams["application_name"] = cfg.AppName
	if connCfg.ConnectTimeout == 0 {
		connCfg.ConnectTimeout = defaultConnectTimeout
	}
	return &Gate{
		cfg:     cfg,
		connCfg: connCfg,
		log:     cfg.Logger.With("component", "gate", "application_name", cfg.AppName),
		kick:    make(chan struct{}, 1),
	}, nil
}

// Confirmed is the last position the gate confirmed (on any connection; 0
// before the first). For metrics and tests.
func (g *Gate) Confirmed() LSN { return LSN(g.confirmed.Load()) }

// Connected reports whether the gate is streaming from the server now.
func (g *Gate) Connected() bool { return g.connected.Load() }

// Kick asks the gate to re-check Allowed (and Ceiling) now instead of at
// the next StatusInterval tick, e.g. right after the lease was renewed or
// regained, or a replica's flush position advanced; while the gate is
// disconnected it retries at once instead of finishing its backoff (call
// it after starting PostgreSQL). It never blocks.
func (g *Gate) Kick() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Run streams from the server and confirms while allowed, reconnecting
// with backoff after any error, until ctx is cancelled; it then closes the
// connection (from then on commits wait: the gate is gone) and returns
// ctx's error. Only one Run may be active at a time.
func (g *Gate) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("gate: Run is already active")
	}
	defer g.running.Store(false)
	backoff := minBackoff
	failures := 0
	for {
		streamed, err := g.stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if streamed {
			backoff, failures = minBackoff, 0
		}
		failures++
		// The first failure in a row is news; the retries that follow are
		// not, until one succeeds.
		level := slog.LevelWarn
		if failures > 1 {
			level = slog.LevelDebug
		}
		g.log.Log(ctx, level, "gate connection failed; commits wait until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		case <-g.kick:
			// The daemon knows better (e.g. it just restarted PostgreSQL).
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (g *Gate) hook() func() {
	g.hookMu.Lock()
	defer g.hookMu.Unlock()
	return g.beforeConfirm
}
