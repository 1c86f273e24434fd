package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// errStreamEnded: the server ended the COPY (a timeline switch, or the
// server shutting down); the gate reconnects.
var errStreamEnded = errors.New("gate: server ended the replication stream")

// stream is one replication connection: connect, IDENTIFY_SYSTEM,
// START_REPLICATION from the server's flush position, then read and
// confirm until an error or ctx's end. streamed reports whether it got as
// far as streaming (the backoff restarts then).
func (g *Gate) stream(ctx context.Context) (streamed bool, err error) {
	conn, err := pgconn.ConnectConfig(ctx, g.connCfg)
	if err != nil {
		return false, fmt.Errorf("gate: connect: %w", err)
	}
	c := &confirmer{g: g, conn: conn}
	var reader chan error
	defer func() {
		g.connected.Store(false)
		// Unblock the reader with a read deadline rather than by closing
		// the socket under it: a timeout leaves pgconn's state alone, so
		// Close below can still say goodbye (Terminate) properly.
		if reader != nil {
			c.stopping.Store(true)
			_ = conn.Conn().SetReadDeadline(time.Now())
			<-reader
		}
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()

	start, err := startStreaming(ctx, conn)
	if err != nil {
		return false, err
	}
	c.received = start
	g.connected.Store(true)
	g.log.Info("gate streaming", "start", start)
	// Release what waits up to the start position at once (if allowed),
	// rather than at the next tick.
	if err := c.confirm(true); err != nil {
		return true, err
	}
	reader = make(chan error, 1)
	go func() { reader <- c.read() }()

	// PostgreSQL counts a WAL sender as synchronous only once it is in
	// the streaming state, which it enters after its first loop, possibly
	// after our first confirmation arrived: that one then releases
	// nothing, and commits that waited for the gate before it connected
	// would wait for the next heartbeat. So repeat the confirmation on
	// every tick for a short while, starting almost at once.
	connectedAt := time.Now()
	early := time.NewTimer(earlyRepeat)
	defer early.Stop()
	tick := time.NewTicker(g.cfg.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-reader:
			reader = nil
			return true, err
		case <-early.C:
			err = c.confirm(true)
		case <-tick.C:
			err = c.confirm(time.Since(connectedAt) < repeatWindow || time.Since(c.lastSent()) >= heartbeatInterval)
		case <-g.kick:
			err = c.confirm(false)
		}
		if err != nil {
			return true, err
		}
	}
}

// earlyRepeat and repeatWindow: see the comment in the stream loop.
const (
	earlyRepeat  = 5 * time.Millisecond
	repeatWindow = time.Second
)

// startStreaming runs IDENTIFY_SYSTEM and START_REPLICATION PHYSICAL from
// the server's current flush position, without a slot: the gate never
// needs WAL it was not sent (it stores nothing, and a reconnect starts
// from the then current position), so nothing must be retained for it.
func startStreaming(ctx context.Context, conn *pgconn.PgConn) (LSN, error) {
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("gate: IDENTIFY_SYSTEM: %w", err)
	}
	// pglogrepl.StartReplication always names a slot; physical streaming
	// without one needs the command written out.
	conn.Frontend().SendQuery(&pgproto3.Query{String: fmt.Sprintf("START_REPLICATION PHYSICAL %s", sys.XLogPos)})
	if err := conn.Frontend().Flush(); err != nil {
		return 0, fmt.Errorf("gate: START_REPLICATION: %w", err)
	}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return 0, fmt.Errorf("gate: START_REPLICATION: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			return LSN(sys.XLogPos), nil
		case *pgproto3.ErrorResponse:
			return 0, fmt.Errorf("gate: START_REPLICATION: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return 0, fmt.Errorf("gate: START_REPLICATION: unexpected %T", msg)
		}
	}
}

// read consumes the stream until it fails: WAL and keepalives advance the
// received position, and new WAL is confirmed right here (when allowed),
// so a commit's cost is one round trip, not a timer tick.
func (c *confirmer) read() error {
	for {
		msg, err := c.conn.ReceiveMessage(context.Background())
		if err != nil {
			if c.stopping.Load() {
				return nil
			}
			return fmt.Errorf("gate: receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := c.handle(m.Data); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			return errStreamEnded
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("gate: server: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// handle processes one CopyData message. Its buffer is pgconn's and is
// reused by the next receive: only positions are kept.
func (c *confirmer) handle(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("gate: %w", err)
		}
		c.advance(LSN(x.WALStart) + LSN(len(x.WALData)))
		return c.confirm(false)
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("gate: %w", err)
		}
		// The keepalive's end is what the sender has sent, all of which
		// came before it on this stream.
		c.advance(LSN(k.ServerWALEnd))
		return c.confirm(k.ReplyRequested)
	}
	return nil
}
