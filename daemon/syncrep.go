package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/pg"
	"github.com/ramd/ramd/pg/gate"
)

// Synchronous modes ([failover] synchronous_mode = quorum | strict).
//
// PostgreSQL's synchronous_standby_names names the lease gate alone (a list
// that also named replicas would let commits complete without the gate, see
// pg/gate). So the gate enforces the quorum too: it confirms a position
// only once NumSync of the plan's standbys have flushed it, as
// pg_stat_replication reports (the ceiling). election.PlanSync decides which
// standbys count and when the replicated setting (what a failover trusts)
// may change; this file is the I/O around it: polling pg_stat_replication,
// answering the gate's ceiling, and proposing the setting.

const (
	// syncPollInterval is how often pg_stat_replication is read while a
	// commit waits for the standbys: every wait costs about this much on
	// top of the standby's own flush.
	syncPollInterval = time.Millisecond
	// syncRefreshInterval is how often it is read anyway, for the plan's
	// view of the standbys.
	syncRefreshInterval = 200 * time.Millisecond
	// syncProposeRetry: a setting proposed this long ago and still not
	// applied (nor refused) is proposed again, unchanged (the version it
	// carries makes a second copy harmless).
	syncProposeRetry = 2 * time.Second
)

// replSnapshot is one read of the primary's WAL flush position followed by
// pg_stat_replication.
type replSnapshot struct {
	// walFlush was read before the standbys' positions: every commit
	// acknowledged before the read is at or below it.
	walFlush uint64
	// flushed is each streaming standby's flush position, by application
	// name (the standby's node name).
	flushed map[string]uint64
	at      time.Time
}

// syncRep polls the local primary's replication state and gives the lease
// gate its ceiling under the current plan. It lives as long as the gate.
type syncRep struct {
	log        *slog.Logger
	connString string
	// kick re-runs the gate's confirmation after the ceiling rose.
	kick func()

	mu      sync.Mutex
	plan    election.SyncPlan
	planned bool
	ids     map[string]uint64 // application name → node id
	snap    replSnapshot
	// base is the WAL flush position of the first snapshot: every commit
	// acknowledged before this watcher (and its gate) started is at or
	// below it. handedOut is the highest ceiling ever returned: the gate
	// never confirms above it. Together they bound every acknowledged
	// commit (see confirmedBound).
	base      uint64
	haveBase  bool
	handedOut uint64

	want atomic.Uint64 // highest position the gate is waiting to confirm
	wake chan struct{}
}

func newSyncRep(log *slog.Logger, connString string) *syncRep {
	return &syncRep{log: log, connString: connString, wake: make(chan struct{}, 1)}
}

// ceiling is the gate's Config.Ceiling: what it may confirm now. Until the
// first plan it is 0 (confirm nothing): the applied setting may promise a
// quorum this node has not checked yet.
func (s *syncRep) ceiling(received gate.LSN) gate.LSN {
	s.mu.Lock()
	c := s.ceilingLocked(uint64(received))
	s.handedOut = max(s.handedOut, c)
	s.mu.Unlock()
	if c < uint64(received) {
		for {
			w := s.want.Load()
			if w >= uint64(received) || s.want.CompareAndSwap(w, uint64(received)) {
				break
			}
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return gate.LSN(c)
}

func (s *syncRep) ceilingLocked(received uint64) uint64 {
	switch {
	case !s.planned:
		return 0
	case !s.plan.Enforce:
		return received
	}
	return election.Ceiling(s.plan.Members, s.plan.NumSync, s.flushedByIDLocked())
}

func (s *syncRep) flushedByIDLocked() map[uint64]uint64 {
	out := make(map[uint64]uint64, len(s.snap.flushed))
	for name, f := range s.snap.flushed {
		if id, ok := s.ids[name]; ok {
			out[id] = f
		}
	}
	return out
}

// setPlan installs a plan (and the names it is expressed in) and wakes the
// gate: a looser plan may release waiting commits.
func (s *syncRep) setPlan(p election.SyncPlan, ids map[string]uint64) {
	s.mu.Lock()
	s.plan, s.planned, s.ids = p, true, ids
	s.mu.Unlock()
	if s.kick != nil {
		s.kick()
	}
}

// view is what the plan needs: the current plan, the last snapshot's
// flush positions by node id, and a bound on every commit acknowledged so
// far. The bound is read under the same lock that installs plans, so a
// ceiling handed out under an earlier plan is always included: once the
// gate counts a set, everything it may still confirm was computed under
// that set. ok is false before the first snapshot.
func (s *syncRep) view(ids map[string]uint64) (current election.SyncPlan, planned bool, flushed map[uint64]uint64, confirmed uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	flushed = map[uint64]uint64{}
	for name, f := range s.snap.flushed {
		if id, ok := ids[name]; ok {
			flushed[id] = f
		}
	}
	return s.plan, s.planned, flushed, max(s.base, s.handedOut), s.haveBase
}

// run polls until ctx ends: every syncRefreshInterval, and every
// syncPollInterval while the gate waits for a position the ceiling does
// not allow yet.
func (s *syncRep) run(ctx context.Context) {
	var conn *pgconn.PgConn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	refresh := time.NewTicker(syncRefreshInterval)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-refresh.C:
		}
		for {
			if conn == nil || conn.IsClosed() {
				c, err := pgconn.Connect(ctx, s.connString)
				if err != nil {
					s.log.Debug("synchronous replication watcher cannot connect", "error", err)
					break
				}
				conn = c
			}
			snap, err := readReplication(ctx, conn)
			if err != nil {
				s.log.Debug("reading pg_stat_replication failed", "error", err)
				conn.Close(context.Background())
				conn = nil
				break
			}
			s.mu.Lock()
			before := s.ceilingLocked(s.want.Load())
			s.snap = snap
			if !s.haveBase {
				s.base, s.haveBase = snap.walFlush, true
			}
			after := s.ceilingLocked(s.want.Load())
			s.mu.Unlock()
			if after > before && s.kick != nil {
				s.kick()
			}
			if after >= s.want.Load() {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(syncPollInterval):
			}
		}
	}
}

// readReplication reads the WAL flush position, then the standbys' flush
// positions, in one round trip (two statements run in order).
func readReplication(ctx context.Context, conn *pgconn.PgConn) (replSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := conn.Exec(ctx, `SELECT pg_current_wal_flush_lsn()::text; SELECT coalesce(application_name, ''), flush_lsn::text FROM pg_stat_replication WHERE state = 'streaming' AND flush_lsn IS NOT NULL`).ReadAll()
	if err != nil {
		return replSnapshot{}, err
	}
	if len(res) != 2 || len(res[0].Rows) != 1 {
		return replSnapshot{}, fmt.Errorf("daemon: unexpected replication query result (%d results)", len(res))
	}
	walFlush, err := pg.ParseLSN(string(res[0].Rows[0][0]))
	if err != nil {
		return replSnapshot{}, err
	}
	snap := replSnapshot{walFlush: uint64(walFlush), flushed: map[string]uint64{}, at: time.Now()}
	for _, row := range res[1].Rows {
		f, err := pg.ParseLSN(string(row[1]))
		if err != nil {
			return replSnapshot{}, err
		}
		name := strings.ToLower(string(row[0])) // PostgreSQL matches names case-insensitively
		snap.flushed[name] = max(snap.flushed[name], uint64(f))
	}
	return snap, nil
}
