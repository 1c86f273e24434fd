package pglock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/ramd/ramd/election"
)

// Config configures a Client.
type Config struct {
	// DSN is the coordination database's connection string (libpq
	// keyword/value or URL). It may hold a password: never log it.
	DSN string
	// Cluster names the row (and derives the advisory lock key).
	Cluster string
	// NodeID is this daemon's node id: the lock session's
	// application_name is "ramd-coordinator-<NodeID>", so every node can
	// tell who coordinates.
	NodeID uint64
	// TTL is the primary lease on the server's clock: a renewal sets
	// lease_until = now() + TTL.
	TTL time.Duration
	// SessionTimeout bounds how long the server keeps the session of a
	// vanished or frozen client, and so its advisory lock. Default 4s.
	SessionTimeout time.Duration
	// OpTimeout bounds every operation. Default 2s.
	OpTimeout time.Duration
}

// Errors the caller tells apart.
var (
	// ErrNotHolder: the operation needs the coordinator lock and this
	// client's session does not hold it (any more).
	ErrNotHolder = errors.New("election/pglock: this session does not hold the coordinator lock")
	// ErrConflict: a compare-and-set found the row changed (another
	// coordinator promoted, the token was revoked, the lease is not over).
	ErrConflict = errors.New("election/pglock: compare-and-set failed")
	// ErrNoRow: the cluster has no row yet (not bootstrapped).
	ErrNoRow = errors.New("election/pglock: no row for this cluster")
)

// Client runs the pglock backend's SQL. It keeps two connections: the
// lock session (the advisory lock and every coordinator decision) and a
// worker for everything else, so a slow decision never holds up a lease
// renewal. Methods on one connection are serialised; the two run in
// parallel.
type Client struct {
	cfg     Config
	key     int64
	session conn
	worker  conn
	locked  bool // guarded by session.mu
}

type conn struct {
	mu   sync.Mutex
	c    *pgx.Conn
	lock bool // the lock session (idle_session_timeout set)
}

// LockKey is the advisory lock key for a cluster name: FNV-1a 64 of
// "ramd:" + name, as a signed bigint.
func LockKey(cluster string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("ramd:" + cluster))
	return int64(h.Sum64())
}

// Open checks the configuration, connects the worker and creates or
// checks the schema.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Cluster == "" {
		return nil, errors.New("election/pglock: empty cluster name")
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("election/pglock: lease ttl %v must be positive", cfg.TTL)
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 4 * time.Second
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 2 * time.Second
	}
	if _, err := pgx.ParseConfig(cfg.DSN); err != nil {
		return nil, fmt.Errorf("election/pglock: coordination_dsn: %w", redactErr(err))
	}
	c := &Client{cfg: cfg, key: LockKey(cfg.Cluster)}
	c.session.lock = true
	cctx, cancel := context.WithTimeout(ctx, 3*cfg.OpTimeout)
	defer cancel()
	conn, err := c.connect(cctx, false)
	if err != nil {
		return nil, err
	}
	if err := ensureSchema(cctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	c.worker.c = conn
	return c, nil
}

// Close closes both connections (which frees the lock).
func (c *Client) Close() {
	for _, k := range []*conn{&c.session, &c.worker} {
		k.mu.Lock()
		if k.c != nil {
			_ = k.c.Close(context.Background())
			k.c = nil
		}
		k.mu.Unlock()
	}
}

// connect opens one connection with the timeouts that bound lock loss.
func (c *Client) connect(ctx context.Context, lockSession bool) (*pgx.Conn, error) {
	pc, err := pgx.ParseConfig(c.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("election/pglock: coordination_dsn: %w", redactErr(err))
	}
	st := c.cfg.SessionTimeout
	idle, count := max(st/4, time.Second), 2
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	secs := func(d time.Duration) string { return strconv.FormatInt(max(int64(d/time.Second), 1), 10) }
	pc.RuntimeParams["application_name"] = "ramd-coordination"
	if lockSession {
		pc.RuntimeParams["application_name"] = "ramd-coordinator-" + strconv.FormatUint(c.cfg.NodeID, 10)
	}
	pc.RuntimeParams["tcp_keepalives_idle"] = secs(idle)
	pc.RuntimeParams["tcp_keepalives_interval"] = secs(idle)
	pc.RuntimeParams["tcp_keepalives_count"] = strconv.Itoa(count)
	pc.RuntimeParams["tcp_user_timeout"] = ms(st)
	pc.RuntimeParams["statement_timeout"] = ms(c.cfg.OpTimeout)
	pc.RuntimeParams["lock_timeout"] = ms(c.cfg.OpTimeout)
	if lockSession {
		pc.RuntimeParams["idle_session_timeout"] = ms(st)
	}
	d := &net.Dialer{
		Timeout:         c.cfg.OpTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: idle, Interval: idle, Count: count},
		Control: func(network, _ string, rc syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return nil
			}
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(st.Milliseconds()))
			})
			return errors.Join(err, serr)
		},
	}
	pc.DialFunc = d.DialContext
	if pc.ConnectTimeout == 0 || pc.ConnectTimeout > c.cfg.OpTimeout {
		pc.ConnectTimeout = c.cfg.OpTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("election/pglock: connect to the coordination database: %w", redactErr(err))
	}
	return conn, nil
}

// redactErr keeps pgx errors from echoing a password: pgx's own errors
// name host, user and database, never the password, but a DSN parse
// error quotes its input, so it is replaced by a generic message.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("cannot parse the connection string (contents not shown: it may hold a password)")
	}
	return err
}

// with runs fn on k's connection, connecting first if needed; an error
// that leaves the connection unusable drops it (and with the lock
// session, the lock: the server ends the session).
func (c *Client) with(ctx context.Context, k *conn, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	defer cancel()
	if k.c == nil || k.c.IsClosed() {
		if k.lock {
			c.locked = false
		}
		conn, err := c.connect(ctx, k.lock)
		if err != nil {
			return err
		}
		k.c = conn
	}
	err := fn(ctx, k.c)
	if err != nil && (k.c.IsClosed() || !isSQLError(err)) {
		_ = k.c.Close(context.Background())
		k.c = nil
		if k.lock {
			c.locked = false
		}
	}
	return err
}

// isSQLError: err is an answer (the server's or a deterministic refusal),
// not a broken connection.
func isSQLError(err error) bool {
	for _, e := range []error{ErrConflict, ErrNotHolder, ErrNoRow, election.ErrRejected, election.ErrStaleToken, election.ErrMalformedCommand} {
		if errors.Is(err, e) {
			return true
		}
	}
	return isPgError(err)
}
