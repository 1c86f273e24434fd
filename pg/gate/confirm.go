package gate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// lateConfirmation: a confirmation written this long after its lease
// check is reported (see doc.go, the check-to-write window).
const lateConfirmation = 100 * time.Millisecond

// confirmer owns one connection's positions and its status updates. The
// reader (on new WAL) and the stream loop (ticks, kicks, heartbeats) both
// confirm, so mu serialises them; pgconn's reader and writer sides are
// separate, so a send may overlap the reader's blocking receive.
type confirmer struct {
	g    *Gate
	conn *pgconn.PgConn
	// stopping is set before the stream is torn down on purpose, so that
	// the reader's resulting error is not reported as a failure.
	stopping atomic.Bool

	mu       sync.Mutex
	received LSN // end of the WAL received on this connection
	// confirmed is what this connection has confirmed; it starts at 0
	// (nothing), never at a position an earlier connection learned: a
	// reconnect must not re-confirm anything without a fresh check.
	confirmed LSN
	sentAt    time.Time
}

// advance records WAL received up to end.
func (c *confirmer) advance(end LSN) {
	c.mu.Lock()
	c.received = max(c.received, end)
	c.mu.Unlock()
}

func (c *confirmer) lastSent() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sentAt
}

// confirm sends a status update when there is something new it may
// confirm, or when force (a reply was requested, a heartbeat is due)
// even if there is not; then it repeats the old position, which releases
// nothing.
//
// Allowed is called here, immediately before the send and after the
// position was read, so that nothing learned before the lease was lost is
// confirmed after. What remains is the instant between the check and the
// write: a process frozen exactly there confirms once, late, when it
// thaws. Allowed must therefore say no a safety margin before the lease
// really expires (see doc.go).
func (c *confirmer) confirm(force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.g.hook(); h != nil {
		h()
	}
	target := c.confirmed
	checked := time.Now()
	if pos := c.ceiling(c.received); pos > target && c.g.cfg.Allowed() {
		target = pos
	}
	if target == c.confirmed && !force {
		return nil
	}
	// write = flush = apply = target: the gate stores nothing, so these
	// positions mean "may be acknowledged", whatever synchronous_commit
	// level (remote_write, on, remote_apply) the commit waits for.
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), c.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(target),
		WALFlushPosition: pglogrepl.LSN(target),
		WALApplyPosition: pglogrepl.LSN(target),
	})
	if err != nil {
		return fmt.Errorf("gate: send status update: %w", err)
	}
	c.sentAt = time.Now()
	if late := c.sentAt.Sub(checked); target > c.confirmed && late > lateConfirmation {
		// Frozen or starved between the lease check and the write: the
		// lease may have expired in between. Nothing can be undone; say so.
		c.g.log.Error("gate: confirmation sent long after its lease check; a commit may have been acknowledged after the lease expired",
			"late_by", late, "position", target)
	}
	if target > c.confirmed {
		c.confirmed = target
		c.g.confirmed.Store(uint64(target))
	}
	return nil
}

// ceiling caps pos by Config.Ceiling, if any.
func (c *confirmer) ceiling(pos LSN) LSN {
	if c.g.cfg.Ceiling == nil {
		return pos
	}
	return min(pos, c.g.cfg.Ceiling(pos))
}
