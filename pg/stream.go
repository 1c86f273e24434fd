package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrDiverged is returned (wrapped) by WaitStreaming and Rewind when the
// server's WAL went past the point where its upstream's timeline forked off:
// it cannot follow that upstream without pg_rewind.
var ErrDiverged = errors.New("timeline diverged from the upstream; rewind needed")

// divergenceMessages are what PostgreSQL 15 logs when a standby cannot
// follow its upstream's timeline (the WAL receiver relays the primary's
// walsender errors).
var divergenceMessages = [][]byte{
	[]byte("is not in this server's history"),             // walsender: requested starting point ... on timeline N
	[]byte("forked off current database system timeline"), // startup: new timeline N forked off ... before current recovery point
	[]byte("is not a child of"),                           // startup / walsender: timeline N is not a child of ...
	[]byte("of the primary is behind recovery timeline"),  // walreceiver: highest timeline N of the primary is behind ...
	[]byte("does not contain minimum recovery point"),     // startup: requested timeline N does not contain minimum recovery point ...
	// walsender: the standby has WAL its upstream never had on the same
	// timeline. Transient only when the upstream is a lagging standby;
	// from a primary it is a divergence pg_rewind cannot see (same
	// timeline): reclone.
	[]byte("is ahead of the WAL flush position of this server"),
}

// streamingSettle is how long the WAL receiver must keep streaming before
// WaitStreaming believes it.
const streamingSettle = 500 * time.Millisecond

// WaitStreaming waits until the server is a standby whose WAL receiver has
// been streaming for streamingSettle, polling Check every 100 ms, until ctx
// is done. It fails early, with ErrDiverged, as soon as the server log
// (since the last start by this Manager) shows that the server cannot
// follow its upstream's timeline.
func (m *Manager) WaitStreaming(ctx context.Context) error {
	var last Health
	var since time.Time
	for {
		last = m.Check(ctx)
		if line := m.divergenceInLog(); line != "" {
			return fmt.Errorf("pg: %w: %s", ErrDiverged, line)
		}
		// The WAL receiver reports "streaming" as soon as it connects,
		// before it has compared timelines with the upstream: a diverged
		// server shows it for a moment, then logs the fork and stops.
		// Only a streaming state that lasts counts.
		switch {
		case !last.Streaming || !last.InRecovery:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= streamingSettle:
			return nil
		}
		select {
		case <-ctx.Done():
			why := last.Error
			if why == "" {
				why = fmt.Sprintf("running=%t in_recovery=%t receiver=%q", last.Running, last.InRecovery, last.ReceiverStatus)
			}
			return fmt.Errorf("pg: not streaming (%s): %w; server log: %s", why, ctx.Err(), fileTail(m.LogFile(), 6))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Diverged returns the first line the server logged since its last start
// by this Manager that says it cannot follow its upstream's timeline
// without pg_rewind, "" when there is none.
func (m *Manager) Diverged() string {
	return m.divergenceInLog()
}

// markLog remembers the log's current size (called before every start).
func (m *Manager) markLog() {
	var size int64
	if fi, err := os.Stat(m.LogFile()); err == nil {
		size = fi.Size()
	}
	m.logMark.Store(size)
}

// divergenceInLog returns the first log line written since markLog that
// says the timelines diverged, "" when there is none. It reads at most the
// last 1 MiB.
func (m *Manager) divergenceInLog() string {
	f, err := os.Open(m.LogFile())
	if err != nil {
		return ""
	}
	defer f.Close()
	from := m.logMark.Load()
	if fi, err := f.Stat(); err != nil || fi.Size() < from {
		from = 0 // replaced or truncated since
	} else if fi.Size()-from > 1<<20 {
		from = fi.Size() - 1<<20
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	for _, line := range bytes.Split(data, []byte("\n")) {
		for _, msg := range divergenceMessages {
			if bytes.Contains(line, msg) {
				return string(bytes.TrimSpace(line))
			}
		}
	}
	return ""
}
