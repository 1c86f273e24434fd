package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// healthSQL answers everything Check needs about the server itself in one
// row; functions that fail on a primary or a standby are guarded by CASE.
// LSNs travel as text (pgx has no pg_lsn codec).
const healthSQL = `
SELECT r.rec,
       current_setting('server_version'),
       s.system_identifier,
       CASE WHEN r.rec THEN coalesce(w.received_tli, (pg_control_checkpoint()).timeline_id)
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
       CASE WHEN NOT r.rec THEN pg_current_wal_lsn()::text END,
       CASE WHEN r.rec THEN pg_last_wal_receive_lsn()::text END,
       CASE WHEN r.rec THEN pg_last_wal_replay_lsn()::text END,
       coalesce(w.status, ''),
       coalesce(w.sender_host, ''),
       coalesce(w.sender_port, 0),
       CASE WHEN NOT r.rec OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, 0)) END
FROM (SELECT pg_is_in_recovery() AS rec) r
CROSS JOIN pg_control_system() s
LEFT JOIN pg_stat_wal_receiver w ON true`

// standbysSQL lists the WAL senders with the LSN their lag is measured
// against (the current WAL position, or on a cascading standby the received
// one), sampled in the same statement.
const standbysSQL = `
SELECT coalesce(application_name, ''), coalesce(host(client_addr), ''),
       coalesce(state, ''), coalesce(sync_state, ''),
       sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END)::text,
       coalesce(extract(epoch FROM write_lag)::float8, 0),
       coalesce(extract(epoch FROM flush_lag)::float8, 0),
       coalesce(extract(epoch FROM replay_lag)::float8, 0)
FROM pg_stat_replication
ORDER BY application_name, pid`

// Check runs one health check: whether the postmaster is alive, then one
// pipelined SQL round trip over a cached unix-socket connection. It never
// takes longer than ConnectTimeout; failures land in Health.Error. A
// server that is not running is not an error: Running is false.
func (m *Manager) Check(ctx context.Context) Health {
	h := Health{CheckedAt: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ConnectTimeout)
	defer cancel()
	select {
	case m.checkSem <- struct{}{}:
	case <-ctx.Done():
		h.Running = m.running()
		h.Error = "pg: check: timed out waiting for the previous check"
		return h
	}
	defer func() { <-m.checkSem }()
	if h.Running = m.running(); !h.Running {
		m.closeConnLocked()
		return h
	}
	if err := m.queryHealth(ctx, &h); err != nil {
		h.Error = "pg: check: " + err.Error()
		return h
	}
	h.Accepting = true
	m.stickTimeline(&h)
	return h
}

// stickTimeline keeps a standby's timeline right while its WAL receiver is
// down (its primary stopped or failed): SQL then only offers the last
// checkpoint's timeline, which lags a timeline switch until the next
// restartpoint, and would make the standby look behind the WAL it holds.
// The timeline the receiver last reported is remembered instead.
func (m *Manager) stickTimeline(h *Health) {
	if !h.InRecovery {
		return
	}
	if h.ReceiverStatus != "" {
		for {
			old := m.recvTLI.Load()
			if h.Timeline <= old || m.recvTLI.CompareAndSwap(old, h.Timeline) {
				break
			}
		}
		return
	}
	h.Timeline = max(h.Timeline, m.recvTLI.Load())
}

func (m *Manager) running() bool {
	_, ok := m.Running()
	return ok
}

// queryHealth runs the check on the cached connection and, if that one
// turns out to be broken (server restarted), once more on a fresh one.
func (m *Manager) queryHealth(ctx context.Context, h *Health) error {
	reused := m.conn != nil && !m.conn.IsClosed()
	if !reused {
		m.closeConnLocked()
		conn, err := m.connectLocal(ctx)
		if err != nil {
			return err
		}
		m.conn = conn
	}
	err := queryHealthOn(ctx, m.conn, h)
	if err != nil {
		m.closeConnLocked()
		if reused && ctx.Err() == nil {
			return m.queryHealth(ctx, h)
		}
	}
	return err
}

func queryHealthOn(ctx context.Context, conn *pgx.Conn, h *Health) error {
	b := &pgx.Batch{}
	b.Queue(healthSQL)
	b.Queue(standbysSQL)
	br := conn.SendBatch(ctx, b)
	err := scanHealth(br.QueryRow(), h)
	if err == nil {
		h.Standbys, err = scanStandbys(br)
	}
	return errors.Join(err, br.Close())
}

func scanHealth(row pgx.Row, h *Health) error {
	var (
		sysID                  int64
		tli, senderPort        int32
		current, recv, replay  *string
		status, senderHost, ve string
		lag                    float64
	)
	if err := row.Scan(&h.InRecovery, &ve, &sysID, &tli, &current, &recv, &replay,
		&status, &senderHost, &senderPort, &lag); err != nil {
		return err
	}
	var err1, err2, err3 error
	h.CurrentLSN, err1 = parseNullLSN(current)
	h.ReceiveLSN, err2 = parseNullLSN(recv)
	h.ReplayLSN, err3 = parseNullLSN(replay)
	// system_identifier is a uint64 stored in a signed bigint.
	h.SystemID = uint64(sysID)
	h.Version = ve
	h.Timeline = uint32(tli)
	h.ReceiverStatus = status
	h.Streaming = status == "streaming"
	h.UpstreamHost, h.UpstreamPort = senderHost, int(senderPort)
	h.LagSeconds = lag
	return errors.Join(err1, err2, err3)
}

func scanStandbys(br pgx.BatchResults) ([]Standby, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Standby
	for rows.Next() {
		s, err := scanStandby(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func scanStandby(rows pgx.Rows) (Standby, error) {
	var (
		s                     Standby
		sent, wr, fl, rp, ref *string
	)
	if err := rows.Scan(&s.ApplicationName, &s.ClientAddr, &s.State, &s.SyncState,
		&sent, &wr, &fl, &rp, &ref, &s.WriteLagSeconds, &s.FlushLagSeconds, &s.ReplayLagSeconds); err != nil {
		return s, err
	}
	var refLSN LSN
	var errs [5]error
	s.SentLSN, errs[0] = parseNullLSN(sent)
	s.WriteLSN, errs[1] = parseNullLSN(wr)
	s.FlushLSN, errs[2] = parseNullLSN(fl)
	s.ReplayLSN, errs[3] = parseNullLSN(rp)
	refLSN, errs[4] = parseNullLSN(ref)
	if err := errors.Join(errs[:]...); err != nil {
		return s, fmt.Errorf("standby %s: %w", s.ApplicationName, err)
	}
	s.WriteLagBytes = lagBytes(refLSN, s.WriteLSN)
	s.FlushLagBytes = lagBytes(refLSN, s.FlushLSN)
	s.ReplayLagBytes = lagBytes(refLSN, s.ReplayLSN)
	return s, nil
}
