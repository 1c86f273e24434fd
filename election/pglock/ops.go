package pglock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd/ramd/election"
)

// Row is the cluster's row as the server returned it.
type Row = election.LockRow

// rowColumns ends with the coordinator: the node id in the
// application_name of the session holding the cluster's advisory lock
// ($1 is the cluster name in every query; the key is derived from it).
const rowColumns = `token, primary_id, revoked, released, extract(epoch from (lease_until - now())) * 1000, state, final,
	coalesce((SELECT substring(a.application_name from '^ramd-coordinator-([0-9]+)$')::bigint FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.classid = ((lock_key >> 32) & 4294967295)::oid AND l.objid = (lock_key & 4294967295)::oid LIMIT 1), 0)`

func scanRow(r pgx.Row) (Row, error) {
	var (
		token, primary, revoked int64
		released                bool
		remMS                   float64
		state, final            []byte
		coordinator             int64
	)
	if err := r.Scan(&token, &primary, &revoked, &released, &remMS, &state, &final, &coordinator); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Row{}, ErrNoRow
		}
		return Row{}, err
	}
	st, err := election.RestoreClusterState(state)
	if err != nil {
		return Row{}, fmt.Errorf("election/pglock: the row's state: %w", err)
	}
	if st.Token != uint64(token) || st.Primary != uint64(primary) {
		return Row{}, fmt.Errorf("election/pglock: the row's state names primary %d token %d, its columns %d and %d", st.Primary, st.Token, primary, token)
	}
	var fin *election.Position
	if len(final) > 0 && string(final) != "null" {
		fin = new(election.Position)
		if err := json.Unmarshal(final, fin); err != nil {
			return Row{}, fmt.Errorf("election/pglock: the row's final position: %w", err)
		}
	}
	remMS = math.Max(math.Min(remMS, 1e12), -1e12)
	return Row{Exists: true, State: st, Revoked: uint64(revoked), Released: released, Final: fin,
		Remaining: time.Duration(remMS * float64(time.Millisecond)), Coordinator: uint64(max(coordinator, 0))}, nil
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// holdsLockSQL is true inside a statement on the session that holds the
// cluster's advisory lock (a bigint key is stored as classid = high 32
// bits, objid = low 32 bits, objsubid = 1).
const holdsLockSQL = `EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
	AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1)`

// TryLock tries to take (or confirms it still holds) the coordinator
// lock on the lock session.
func (c *Client) TryLock(ctx context.Context) (bool, error) {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	var held bool
	err := c.with(ctx, &c.session, func(ctx context.Context, conn *pgx.Conn) error {
		if c.locked {
			// Confirm: a session that was cut off would fail here.
			return conn.QueryRow(ctx, `SELECT `+holdsLockSQL, c.key).Scan(&held)
		}
		return conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, c.key).Scan(&held)
	})
	if err != nil {
		c.locked = false
		return false, err
	}
	c.locked = held
	return held, nil
}

// Locked reports whether this client believes its session holds the lock
// (every decision re-checks it on the server).
func (c *Client) Locked() bool {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	return c.locked
}

// Unlock gives the lock up by closing the lock session.
func (c *Client) Unlock() {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	if c.session.c != nil {
		_ = c.session.c.Close(context.Background())
		c.session.c = nil
	}
	c.locked = false
}

// Read returns the cluster's row: on the lock session while it holds the
// lock (that keeps the session from idling out), else on the worker.
func (c *Client) Read(ctx context.Context) (Row, error) {
	k := &c.worker
	c.session.mu.Lock()
	if c.locked {
		k = &c.session
	} else {
		c.session.mu.Unlock()
		k.mu.Lock()
	}
	defer k.mu.Unlock()
	var row Row
	err := c.with(ctx, k, func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		row, err = scanRow(conn.QueryRow(ctx, `SELECT `+rowColumns+` FROM ramd.cluster WHERE cluster = $1`, c.cfg.Cluster))
		return err
	})
	if errors.Is(err, ErrNoRow) {
		return Row{}, nil
	}
	return row, err
}

// Renew extends the lease of primary self under token: lease_until =
// now() + TTL, only while self is the named primary of token and token
// is neither revoked nor released. ok false: refused (the row tells why).
func (c *Client) Renew(ctx context.Context, self, token uint64) (row Row, ok bool, err error) {
	c.worker.mu.Lock()
	defer c.worker.mu.Unlock()
	err = c.with(ctx, &c.worker, func(ctx context.Context, conn *pgx.Conn) error {
		row, err = scanRow(conn.QueryRow(ctx, `UPDATE ramd.cluster SET lease_until = greatest(lease_until, now() + $4 * interval '1 millisecond'), updated_at = now()
			WHERE cluster = $1 AND primary_id = $2 AND token = $3 AND revoked < token AND NOT released
			RETURNING `+rowColumns, c.cfg.Cluster, int64(self), int64(token), c.cfg.TTL.Milliseconds()))
		return err
	})
	if errors.Is(err, ErrNoRow) {
		row, err = c.readLocked(ctx, &c.worker)
		return row, false, err
	}
	return row, err == nil, err
}

// Release records that primary self gave up token (it has fenced
// itself): the lease ends now and a coordinator may promote at once.
// final, after a clean stop (switchover), is where its last WAL record
// starts, recorded in the same statement: a coordinator that sees the
// release also sees it, and promotes only a replica beyond it.
func (c *Client) Release(ctx context.Context, self, token uint64, final *election.Position) (Row, error) {
	var fin []byte
	if final != nil {
		var err error
		if fin, err = json.Marshal(final); err != nil {
			return Row{}, err
		}
	}
	c.worker.mu.Lock()
	defer c.worker.mu.Unlock()
	var row Row
	err := c.with(ctx, &c.worker, func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		row, err = scanRow(conn.QueryRow(ctx, `UPDATE ramd.cluster SET released = true, lease_until = least(lease_until, now()),
				final = coalesce($4::jsonb, final), updated_at = now()
			WHERE cluster = $1 AND primary_id = $2 AND token = $3
			RETURNING `+rowColumns, c.cfg.Cluster, int64(self), int64(token), fin))
		return err
	})
	if errors.Is(err, ErrNoRow) {
		row, err = c.readLocked(ctx, &c.worker)
		if err == nil {
			err = fmt.Errorf("%w: token %d of node %d is not the current one", ErrConflict, token, self)
		}
	}
	return row, err
}

// Revoke stops every further renewal of token (coordinator only). The
// row returned says how long the lease still runs on the server's clock.
func (c *Client) Revoke(ctx context.Context, token uint64) (Row, error) {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	if !c.locked {
		return Row{}, ErrNotHolder
	}
	var row Row
	err := c.with(ctx, &c.session, func(ctx context.Context, conn *pgx.Conn) error {
		var held bool
		var err error
		if err = conn.QueryRow(ctx, `SELECT `+holdsLockSQL, c.key).Scan(&held); err != nil {
			return err
		}
		if !held {
			c.locked = false
			return ErrNotHolder
		}
		row, err = scanRow(conn.QueryRow(ctx, `UPDATE ramd.cluster SET revoked = greatest(revoked, $2), updated_at = now()
			WHERE cluster = $1 AND token = $2 RETURNING `+rowColumns, c.cfg.Cluster, int64(token)))
		return err
	})
	if errors.Is(err, ErrNoRow) {
		return c.conflict(ctx, "revoke of token %d", token)
	}
	return row, err
}

// conflict reads the row after a failed compare-and-set (on the lock
// session, whose mutex the caller holds).
func (c *Client) conflict(ctx context.Context, what string, args ...any) (Row, error) {
	row, err := c.readLocked(ctx, &c.session)
	if err != nil {
		return Row{}, err
	}
	return row, fmt.Errorf("%w: %s (row: token %d, primary %d, revoked %d, released %v, lease remaining %v)",
		ErrConflict, fmt.Sprintf(what, args...), row.State.Token, row.State.Primary, row.Revoked, row.Released, row.Remaining)
}

func (c *Client) readLocked(ctx context.Context, k *conn) (Row, error) {
	var row Row
	err := c.with(ctx, k, func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		row, err = scanRow(conn.QueryRow(ctx, `SELECT `+rowColumns+` FROM ramd.cluster WHERE cluster = $1`, c.cfg.Cluster))
		return err
	})
	if errors.Is(err, ErrNoRow) {
		return Row{}, nil
	}
	return row, err
}

// Apply applies one command to the replicated state in a transaction.
//
//   - Bootstrap inserts the row (token 1) if there is none.
//   - Promote runs on the lock session, checks the lock inside the
//     transaction, and is a compare-and-set on the old token that also
//     requires the old lease to be over on the server's clock after a
//     revoke, or released. It names the new primary, increments the
//     token, clears revoked/released and gives the new primary one TTL
//     to start renewing.
//   - Everything else is read-modify-write under SELECT ... FOR UPDATE.
//
// A deterministic refusal (election.ErrRejected, ErrStaleToken) leaves
// the row unchanged.
func (c *Client) Apply(ctx context.Context, cmd election.Command) (Row, error) {
	switch cmd.Type {
	case election.CmdBootstrap:
		return c.bootstrap(ctx, cmd)
	case election.CmdPromote:
		return c.promote(ctx, cmd)
	}
	c.worker.mu.Lock()
	defer c.worker.mu.Unlock()
	var row Row
	err := c.with(ctx, &c.worker, func(ctx context.Context, conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			cur, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM ramd.cluster WHERE cluster = $1 FOR UPDATE`, c.cfg.Cluster))
			if err != nil {
				return err
			}
			st := cur.State.Clone()
			if err := election.ApplyLocked(&st, cmd); err != nil {
				row = cur
				return err
			}
			js, err := json.Marshal(st)
			if err != nil {
				return err
			}
			row, err = scanRow(tx.QueryRow(ctx, `UPDATE ramd.cluster SET state = $2, updated_at = now() WHERE cluster = $1 AND token = $3 RETURNING `+rowColumns,
				c.cfg.Cluster, js, int64(cur.State.Token)))
			return err
		})
	})
	return row, err
}

func (c *Client) bootstrap(ctx context.Context, cmd election.Command) (Row, error) {
	var st election.ClusterState
	if err := election.ApplyLocked(&st, cmd); err != nil {
		return Row{}, err
	}
	js, err := json.Marshal(st)
	if err != nil {
		return Row{}, err
	}
	c.worker.mu.Lock()
	defer c.worker.mu.Unlock()
	var row Row
	err = c.with(ctx, &c.worker, func(ctx context.Context, conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO ramd.cluster (cluster, token, primary_id, lease_until, state, lock_key)
				VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond', $5, $6) ON CONFLICT (cluster) DO NOTHING`,
				c.cfg.Cluster, int64(st.Token), int64(st.Primary), c.cfg.TTL.Milliseconds(), js, c.key)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				if _, err := tx.Exec(ctx, `INSERT INTO ramd.history (cluster, token, old_primary, new_primary, reason) VALUES ($1, $2, 0, $3, 'bootstrap')`,
					c.cfg.Cluster, int64(st.Token), int64(st.Primary)); err != nil {
					return err
				}
			}
			row, err = scanRow(tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM ramd.cluster WHERE cluster = $1`, c.cfg.Cluster))
			if err == nil && tag.RowsAffected() == 0 {
				return fmt.Errorf("%w: already bootstrapped (primary %d, token %d)", election.ErrRejected, row.State.Primary, row.State.Token)
			}
			return err
		})
	})
	return row, err
}

func (c *Client) promote(ctx context.Context, cmd election.Command) (Row, error) {
	p := cmd.Promote
	if p == nil || p.Token == 0 {
		return Row{}, fmt.Errorf("%w: promote without a token", election.ErrRejected)
	}
	old := p.Token - 1
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	if !c.locked {
		return Row{}, ErrNotHolder
	}
	var row Row
	err := c.with(ctx, &c.session, func(ctx context.Context, conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var held bool
			if err := tx.QueryRow(ctx, `SELECT `+holdsLockSQL, c.key).Scan(&held); err != nil {
				return err
			}
			if !held {
				c.locked = false
				return ErrNotHolder
			}
			cur, err := scanRow(tx.QueryRow(ctx, `SELECT `+rowColumns+` FROM ramd.cluster WHERE cluster = $1 FOR UPDATE`, c.cfg.Cluster))
			if err != nil {
				return err
			}
			st := cur.State.Clone()
			if err := election.ApplyLocked(&st, cmd); err != nil {
				row = cur
				return err
			}
			js, err := json.Marshal(st)
			if err != nil {
				return err
			}
			// The compare-and-set: the old token, still current, and its
			// lease over (revoked and expired on this server's clock) or
			// released by its primary.
			row, err = scanRow(tx.QueryRow(ctx, `UPDATE ramd.cluster
				SET token = $3, primary_id = $4, revoked = 0, released = false, final = NULL,
				    lease_until = now() + $5 * interval '1 millisecond', state = $6, updated_at = now()
				WHERE cluster = $1 AND token = $2 AND (released OR (revoked >= token AND lease_until < now()))
				RETURNING `+rowColumns, c.cfg.Cluster, int64(old), int64(st.Token), int64(st.Primary), c.cfg.TTL.Milliseconds(), js))
			if errors.Is(err, ErrNoRow) {
				row = cur
				return fmt.Errorf("%w: promote to token %d: the row has token %d (revoked %d, released %v, lease remaining %v)",
					ErrConflict, p.Token, cur.State.Token, cur.Revoked, cur.Released, cur.Remaining)
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO ramd.history (cluster, token, old_primary, new_primary, reason) VALUES ($1, $2, $3, $4, $5)`,
				c.cfg.Cluster, int64(st.Token), int64(p.Old), int64(p.New), p.Reason)
			return err
		})
	})
	return row, err
}
