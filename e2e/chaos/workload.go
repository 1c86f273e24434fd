package chaos

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Table is the set every client inserts into.
const Table = "chaos_set"

// createTable is run once on the first primary.
const createTable = "CREATE TABLE " + Table + " (id bigint PRIMARY KEY, client text NOT NULL)"

// insertSQL inserts one id and returns, from the server that commits it,
// its port (which names the node), the fencing token its daemon records
// as the one its WAL is written under (<state_directory>/writer_token,
// written before PostgreSQL is promoted or started as primary; the
// launcher puts the state directory next to the data directory), and the
// timeline of the WAL being written and the WAL insert position after the
// row (pg_current_wal_insert_lsn: the commit record follows it, so it is a
// lower bound of the commit's position). The file is read in the same
// statement as the insert, so it names the token under which this
// PostgreSQL accepts the write: a primary never changes its writer token
// while it runs as primary.
const insertSQL = "INSERT INTO " + Table + ` (id, client) VALUES ($1, $2)
RETURNING inet_server_port(),
  pg_read_file(regexp_replace(current_setting('data_directory'), '/data$', '/state/writer_token')),
  ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int,
  (pg_current_wal_insert_lsn() - '0/0')::bigint`

// Op is one insert attempt.
type Op struct {
	ID     int64
	Client string
	Sent   time.Time
	// Done is when the answer (or the error) arrived.
	Done time.Time
	OK   bool
	// From the committing server when OK.
	Port     int
	Token    uint64
	TokenErr string // the writer_token file could not be parsed
	Timeline int
	// LSN is the committing server's WAL insert position after the row
	// (bytes), for the lost-WAL estimate.
	LSN uint64
	Err string
}

// Log collects every op of every client.
type Log struct {
	mu  sync.Mutex
	ops []Op
	id  atomic.Int64
}

func (l *Log) nextID() int64 { return l.id.Add(1) }

func (l *Log) add(op Op) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// Ops returns a copy of the ops so far.
func (l *Log) Ops() []Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Op(nil), l.ops...)
}

// client inserts one id every Interval through its own connection,
// reconnecting after any error.
type client struct {
	Name     string
	Config   *pgx.ConnConfig
	Interval time.Duration
	Timeout  time.Duration
	Log      *Log
}

func (c *client) run(ctx context.Context) {
	var conn *pgx.Conn
	closeConn := func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			conn.Close(cctx)
			cancel()
			conn = nil
		}
	}
	defer closeConn()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, c.Timeout)
			cn, err := pgx.ConnectConfig(cctx, c.Config)
			cancel()
			if err != nil {
				continue
			}
			conn = cn
		}
		op := Op{ID: c.Log.nextID(), Client: c.Name, Sent: time.Now()}
		ictx, cancel := context.WithTimeout(ctx, c.Timeout)
		var tok string
		err := conn.QueryRow(ictx, insertSQL, op.ID, c.Name).Scan(&op.Port, &tok, &op.Timeline, &op.LSN)
		cancel()
		op.Done = time.Now()
		if err != nil {
			op.Err = shortErr(err)
			closeConn()
		} else {
			op.OK = true
			op.Token, op.TokenErr = parseWriterToken(tok)
		}
		if ctx.Err() != nil && !op.OK {
			// Cancelled by the end of the run, not by the cluster: still
			// an attempt (its row may exist), so it is logged.
			op.Err = "run ended: " + op.Err
		}
		c.Log.add(op)
	}
}

// parseWriterToken reads daemon/writertoken.go's file: a header line and
// the decimal token (or a word for pending/unknown).
func parseWriterToken(s string) (uint64, string) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return 0, fmt.Sprintf("writer_token file %q has no token line", s)
	}
	t, err := strconv.ParseUint(strings.TrimSpace(lines[len(lines)-1]), 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("writer_token file %q: %v", s, err)
	}
	return t, ""
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

// pgConfig parses dsn, dialling through dial when set (a client inside a
// node's namespace).
func pgConfig(dsn string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if dial != nil {
		cfg.DialFunc = dial
	}
	return cfg, nil
}
