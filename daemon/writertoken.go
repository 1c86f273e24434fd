package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

// The writer token is the fencing token under which the primary that
// wrote the last record of this node's WAL was promoted (see
// election.Position). Choose orders positions by (token, LSN) when every
// node reports one, because PostgreSQL numbers timelines locally and two
// divergent histories can end on the same timeline number.
//
// The daemon knows it as follows:
//
//   - a primary writes under the token it was promoted, started or
//     bootstrapped under: reconcile records it before PostgreSQL is
//     promoted or started as primary (initdb records 0: the bootstrap
//     primary's WAL from before token 1);
//   - a standby that streams from the current primary P, on P's timeline,
//     holds records P wrote: it adopts P's token (from P's gossip); until
//     then it keeps the token it had;
//   - pg_rewind, a re-clone or a first clone replaces the local history by
//     a prefix of P's: while that runs the old token no longer describes
//     it and the node is "pending", reporting its position as unknown
//     (Timeline 0). Once a rewind or re-clone from P has succeeded the
//     history is a prefix of P's, whose last records P wrote under P's
//     writer token: the node takes that token (rejoinedToken) at once,
//     without waiting to stream. Otherwise a node rewound just before P
//     stopped stayed "pending" for good, and a coordinator that needs its
//     position (it may hold commits as a synchronous standby) waited
//     forever (a chaos finding, docs/benchmarks.md "Chaos": finding 4).
//     A first clone stays pending until it streams (it is not a
//     synchronous standby yet);
//   - without a recorded token (a state directory from before writer
//     tokens, an unreadable file) the token is unknown and Choose falls
//     back to (timeline, LSN) for everybody.
//
// Every change is persisted in the state directory before it is reported.

// writerTokenFile is the file in cluster.state_directory.
const writerTokenFile = "writer_token"

// writerTokenHeader is its first line (the format version).
const writerTokenHeader = "ramd writer token v1"

// tokenState is the recorded writer token.
type tokenState struct {
	// Known: Token is the writer token of the local WAL.
	Known bool
	Token uint64
	// Pending: the local history was replaced (rewind, clone); the
	// position is unknown until the node streams the primary's timeline.
	// Never together with Known.
	Pending bool
}

var tokenUnknown = tokenState{}

func tokenKnown(t uint64) tokenState { return tokenState{Known: true, Token: t} }

var tokenPending = tokenState{Pending: true}

func (s tokenState) String() string {
	switch {
	case s.Pending:
		return "pending"
	case s.Known:
		return strconv.FormatUint(s.Token, 10)
	default:
		return "unknown"
	}
}

// apply returns pos as the node reports it: with the writer token when
// known, as unknown (Timeline 0) when pending.
func (s tokenState) apply(pos election.Position) election.Position {
	switch {
	case s.Pending:
		return election.Position{}
	case s.Known:
		pos.Token, pos.TokenKnown = s.Token, true
	}
	return pos
}

// tokenInput is what decideWriterToken looks at.
type tokenInput struct {
	// Standby: the local server answers and is in recovery. (A primary's
	// token is recorded by reconcile, not here.)
	Standby bool
	// Timeline is the standby's timeline (the WAL receiver's).
	Timeline uint32
	// Streaming: the WAL receiver is streaming.
	Streaming bool
	// Upstream is the node the WAL receiver is connected to (0: unknown,
	// or no member's PostgreSQL).
	Upstream uint64
	// Primary is the current primary P per the applied cluster state (0:
	// none yet), Token the fencing token P is primary under.
	Primary uint64
	Token   uint64
	// P as gossiped: serving as primary, its timeline and writer token.
	PrimaryServing    bool
	PrimaryTimeline   uint32
	PrimaryWriter     uint64
	PrimaryWriterKnow bool
	// Saved is the last persisted state (which tells whether the history
	// was replaced since: Pending).
	Saved tokenState
}

// decideWriterToken returns the writer token state to persist and report.
// It only ever changes a standby's: once the standby streams from the
// current primary P and its timeline is P's, it adopts P's token, or
// "unknown" if P reports none. P's gossiped token is taken only when it is
// the token the cluster names P under, so that a stale gossip entry from
// before P's promotion is never adopted.
func decideWriterToken(in tokenInput) tokenState {
	if !in.Standby || !in.Streaming || in.Primary == 0 || in.Upstream != in.Primary ||
		!in.PrimaryServing || in.Timeline == 0 || in.Timeline != in.PrimaryTimeline {
		return in.Saved
	}
	if !in.PrimaryWriterKnow {
		return tokenUnknown
	}
	if in.PrimaryWriter != in.Token {
		return in.Saved
	}
	return tokenKnown(in.PrimaryWriter)
}

// rejoinedToken is the writer token of a history just rewound or re-cloned
// from the primary P, named primary under token: P's gossiped writer token
// when it is that token (a stale gossip entry from before P's promotion is
// never taken), unknown otherwise. It is decided before the rejoin starts,
// from the view the source was chosen by.
func rejoinedToken(srcWriter uint64, srcWriterKnown bool, token uint64) tokenState {
	if !srcWriterKnown || srcWriter != token {
		return tokenUnknown
	}
	return tokenKnown(srcWriter)
}

// encodeWriterToken is the file's content.
func encodeWriterToken(s tokenState) []byte {
	return []byte(writerTokenHeader + "\n" + s.String() + "\n")
}

// decodeWriterToken parses the file's content.
func decodeWriterToken(b []byte) (tokenState, error) {
	text := string(b)
	if !strings.HasSuffix(text, "\n") {
		return tokenUnknown, errors.New("truncated (no final newline)")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 2 {
		return tokenUnknown, fmt.Errorf("%d lines, want 2", len(lines))
	}
	if lines[0] != writerTokenHeader {
		return tokenUnknown, fmt.Errorf("first line %q, want %q", lines[0], writerTokenHeader)
	}
	switch v := lines[1]; v {
	case "pending":
		return tokenPending, nil
	case "unknown":
		return tokenUnknown, nil
	default:
		t, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return tokenUnknown, fmt.Errorf("token %q: not a decimal number", v)
		}
		return tokenKnown(t), nil
	}
}

// writerToken is the node's persisted writer token. Safe for concurrent
// use; a nil *writerToken is "unknown" and persists nothing.
type writerToken struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	state tokenState
	// replaced counts the times the local history was replaced (a
	// pending state set): positions seen before the last one describe
	// another history.
	replaced uint64
}

// loadWriterToken reads the file in stateDir. A missing file is an
// unknown token; an unreadable or garbled one too, with a warning naming
// the file.
func loadWriterToken(stateDir string, log *slog.Logger) *writerToken {
	w := &writerToken{path: filepath.Join(stateDir, writerTokenFile), log: log}
	b, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		log.Debug("no writer token recorded; positions are reported without one until this node is promoted or streams from the primary", "file", w.path)
	case err != nil:
		log.Warn("cannot read the writer token; treating it as unknown", "file", w.path, "error", err)
	default:
		s, err := decodeWriterToken(b)
		if err != nil {
			log.Warn("the writer token file is corrupt; treating the token as unknown", "file", w.path, "error", err)
		}
		w.state = s
	}
	return w
}

// get returns the current state.
func (w *writerToken) get() tokenState {
	if w == nil {
		return tokenUnknown
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// set persists s (write, fsync, rename, fsync the directory) and then
// makes it current. On error the previous state stays current.
func (w *writerToken) set(s tokenState, why string) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.setLocked(s, why)
}

func (w *writerToken) setLocked(s tokenState, why string) error {
	if s == w.state {
		return nil
	}
	if err := writeFileAtomic(w.path, encodeWriterToken(s), 0o644); err != nil {
		return err
	}
	w.log.Info("writer token recorded", "from", w.state.String(), "to", s.String(), "reason", why)
	w.state = s
	if s.Pending {
		w.replaced++
	}
	return nil
}

// replacements returns how many times the local history was replaced
// since the daemon started.
func (w *writerToken) replacements() uint64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.replaced
}

// update applies decide to the current state and persists the outcome if
// it changed; it returns the state to report. A failed write is logged
// and the previous state reported (the next check retries).
func (w *writerToken) update(decide func(saved tokenState) tokenState) tokenState {
	if w == nil {
		return tokenUnknown
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	next := decide(w.state)
	if err := w.setLocked(next, "streaming the primary's timeline"); err != nil {
		w.log.Error("persisting the writer token failed; will retry", "error", err)
	}
	return w.state
}

// observeWriterToken applies the standby rule to health h (see
// decideWriterToken) and returns the writer token to report. It runs on
// the daemon's loop and on the election's (answering position requests).
func (d *Daemon) observeWriterToken(h pg.Health) tokenState {
	if d.writer == nil {
		return tokenUnknown
	}
	in := tokenInput{Standby: h.Accepting && h.InRecovery, Timeline: h.Timeline, Streaming: h.Streaming}
	if in.Standby && in.Streaming && d.failover != nil {
		st, _, _ := d.failover.Snapshot()
		if st.Bootstrapped && st.Primary != uint64(d.cfg.Cluster.NodeID) {
			in.Primary, in.Token = st.Primary, st.Token
			if p, ok := d.mesh.Member(int(st.Primary)); ok {
				s := p.State
				in.PrimaryServing = s.Role == mesh.RolePrimary && s.PGRunning && s.Healthy
				in.PrimaryTimeline = s.Timeline
				in.PrimaryWriter, in.PrimaryWriterKnow = s.WriterToken, s.WriterTokenKnown
				if upstreamIs(h, pg.Endpoint{Host: s.PGHost, Port: s.PGPort}) {
					in.Upstream = st.Primary
				}
			}
		}
	}
	return d.writer.update(func(saved tokenState) tokenState {
		in.Saved = saved
		return decideWriterToken(in)
	})
}

// upstreamIs reports whether a standby's WAL receiver is connected to src
// (the same test follow uses to leave a standby alone).
func upstreamIs(h pg.Health, src pg.Endpoint) bool {
	if src.Port == 0 {
		return false
	}
	if h.UpstreamPort == src.Port && h.UpstreamHost == src.Host {
		return true
	}
	return h.UpstreamHost != "" && h.UpstreamPort == src.Port
}
