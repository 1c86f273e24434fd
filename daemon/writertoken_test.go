package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramd/ramd/election"
	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

func TestDecideWriterToken(t *testing.T) {
	// streaming is a standby of P = node 1 (token 7, timeline 3), on P's
	// timeline, P gossiping writer token 7.
	streaming := tokenInput{
		Standby: true, Timeline: 3, Streaming: true, Upstream: 1,
		Primary: 1, Token: 7, PrimaryServing: true, PrimaryTimeline: 3, PrimaryWriter: 7, PrimaryWriterKnow: true,
		Saved: tokenKnown(5),
	}
	with := func(f func(*tokenInput)) tokenInput {
		in := streaming
		f(&in)
		return in
	}
	tests := []struct {
		name string
		in   tokenInput
		want tokenState
	}{
		{"streams P's timeline: adopts P's token", streaming, tokenKnown(7)},
		{"already adopted", with(func(in *tokenInput) { in.Saved = tokenKnown(7) }), tokenKnown(7)},
		{"after a rewind: adopts once streaming P's timeline", with(func(in *tokenInput) { in.Saved = tokenPending }), tokenKnown(7)},
		{"no token recorded: adopts", with(func(in *tokenInput) { in.Saved = tokenUnknown }), tokenKnown(7)},
		{"still on the old timeline: keeps", with(func(in *tokenInput) { in.Timeline = 2 }), tokenKnown(5)},
		{"after a rewind, still on the old timeline: stays pending", with(func(in *tokenInput) { in.Timeline, in.Saved = 2, tokenPending }), tokenPending},
		{"receiver not streaming: keeps", with(func(in *tokenInput) { in.Streaming = false }), tokenKnown(5)},
		{"not streaming after a rewind: stays pending", with(func(in *tokenInput) { in.Streaming, in.Saved = false, tokenPending }), tokenPending},
		{"streams from another node: keeps", with(func(in *tokenInput) { in.Upstream = 2 }), tokenKnown(5)},
		{"upstream unknown: keeps", with(func(in *tokenInput) { in.Upstream = 0 }), tokenKnown(5)},
		{"no primary yet: keeps", with(func(in *tokenInput) { in.Primary, in.Upstream = 0, 0 }), tokenKnown(5)},
		{"P not serving: keeps", with(func(in *tokenInput) { in.PrimaryServing = false }), tokenKnown(5)},
		{"P's gossip from before its promotion: keeps", with(func(in *tokenInput) { in.PrimaryWriter = 6 }), tokenKnown(5)},
		{"P's gossiped timeline lags: keeps", with(func(in *tokenInput) { in.PrimaryTimeline = 2 }), tokenKnown(5)},
		{"same timeline number, another history (P on 4): keeps", with(func(in *tokenInput) { in.PrimaryTimeline = 4 }), tokenKnown(5)},
		{"P reports no token: unknown", with(func(in *tokenInput) { in.PrimaryWriterKnow, in.PrimaryWriter = false, 0 }), tokenUnknown},
		{"timeline not measured: keeps", with(func(in *tokenInput) { in.Timeline, in.PrimaryTimeline = 0, 0 }), tokenKnown(5)},
		{"primary: keeps what reconcile recorded", with(func(in *tokenInput) { in.Standby = false }), tokenKnown(5)},
		{"not answering: keeps pending", with(func(in *tokenInput) { in.Standby, in.Saved = false, tokenPending }), tokenPending},
		{"bootstrap: P's initdb WAL under token 0 before token 1 applies: keeps", with(func(in *tokenInput) {
			in.Token, in.PrimaryWriter, in.Timeline, in.PrimaryTimeline, in.Saved = 1, 0, 1, 1, tokenPending
		}), tokenPending},
		{"bootstrap: P recorded token 1", with(func(in *tokenInput) {
			in.Token, in.PrimaryWriter, in.Timeline, in.PrimaryTimeline, in.Saved = 1, 1, 1, 1, tokenPending
		}), tokenKnown(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideWriterToken(tt.in); got != tt.want {
				t.Fatalf("decideWriterToken = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenStateApply(t *testing.T) {
	pos := election.Position{Timeline: 3, LSN: 100}
	if got := tokenKnown(7).apply(pos); got != (election.Position{Timeline: 3, LSN: 100, Token: 7, TokenKnown: true}) {
		t.Fatalf("known: %+v", got)
	}
	if got := tokenKnown(0).apply(pos); !got.TokenKnown || got.Token != 0 {
		t.Fatalf("known 0: %+v", got)
	}
	if got := tokenUnknown.apply(pos); got != pos {
		t.Fatalf("unknown: %+v", got)
	}
	if got := tokenPending.apply(pos); got.Known() || got.TokenKnown {
		t.Fatalf("pending must report an unknown position: %+v", got)
	}
}

func testLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestWriterTokenFileRoundTrip(t *testing.T) {
	for _, s := range []tokenState{tokenKnown(0), tokenKnown(1), tokenKnown(1<<64 - 1), tokenPending, tokenUnknown} {
		dir := t.TempDir()
		var log bytes.Buffer
		w := loadWriterToken(dir, testLogger(&log))
		if w.get() != tokenUnknown {
			t.Fatalf("fresh directory: %v", w.get())
		}
		// Set something else first, so that setting tokenUnknown writes.
		if err := w.set(tokenKnown(42), "test"); err != nil {
			t.Fatal(err)
		}
		if err := w.set(s, "test"); err != nil {
			t.Fatal(err)
		}
		got := loadWriterToken(dir, testLogger(&log)).get()
		if got != s {
			t.Fatalf("round trip of %v: got %v", s, got)
		}
		if strings.Contains(log.String(), "WARN") {
			t.Fatalf("unexpected warning: %s", log.String())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 || ents[0].Name() != writerTokenFile {
			t.Fatalf("directory holds %v, want only %s", ents, writerTokenFile)
		}
	}
}

func TestWriterTokenFileBad(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty (torn write)", ""},
		{"header only (torn write)", writerTokenHeader + "\n"},
		{"no final newline (torn write)", writerTokenHeader + "\n12"},
		{"garbage", "\x00\x01\x02 not a token"},
		{"unknown version", "ramd writer token v2\n12\n"},
		{"not a number", writerTokenHeader + "\ntwelve\n"},
		{"negative", writerTokenHeader + "\n-1\n"},
		{"overflow", writerTokenHeader + "\n18446744073709551616\n"},
		{"extra line", writerTokenHeader + "\n12\n13\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, writerTokenFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			w := loadWriterToken(dir, testLogger(&log))
			if got := w.get(); got != tokenUnknown {
				t.Fatalf("got %v, want unknown", got)
			}
			if !strings.Contains(log.String(), "WARN") || !strings.Contains(log.String(), path) {
				t.Fatalf("want a warning naming %s, got %q", path, log.String())
			}
			// The next change overwrites the bad file.
			if err := w.set(tokenKnown(3), "test"); err != nil {
				t.Fatal(err)
			}
			if got := loadWriterToken(dir, testLogger(&log)).get(); got != tokenKnown(3) {
				t.Fatalf("after rewrite: %v", got)
			}
		})
	}
}

func TestWriterTokenFileMissingAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	if got := loadWriterToken(dir, testLogger(&log)).get(); got != tokenUnknown {
		t.Fatalf("missing: %v", got)
	}
	if strings.Contains(log.String(), "WARN") {
		t.Fatalf("a missing file is no warning: %s", log.String())
	}
	// A directory where the file should be cannot be read.
	if err := os.Mkdir(filepath.Join(dir, writerTokenFile), 0o755); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	w := loadWriterToken(dir, testLogger(&log))
	if w.get() != tokenUnknown || !strings.Contains(log.String(), "WARN") {
		t.Fatalf("unreadable: %v, log %q", w.get(), log.String())
	}
	// A failed write keeps the previous state.
	if err := w.set(tokenKnown(9), "test"); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	if w.get() != tokenUnknown {
		t.Fatalf("state changed despite the failed write: %v", w.get())
	}
}

func TestWriterTokenIgnoresLeftoverTempFile(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	w := loadWriterToken(dir, testLogger(&log))
	if err := w.set(tokenKnown(4), "test"); err != nil {
		t.Fatal(err)
	}
	// A crash between writing the temporary file and the rename leaves
	// the previous file in place.
	tmp := filepath.Join(dir, "."+writerTokenFile+".tmp123")
	if err := os.WriteFile(tmp, []byte(writerTokenHeader+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := loadWriterToken(dir, testLogger(&log)).get(); got != tokenKnown(4) {
		t.Fatalf("got %v, want 4", got)
	}
}

func TestNilWriterToken(t *testing.T) {
	var w *writerToken
	if w.get() != tokenUnknown || w.set(tokenKnown(1), "test") != nil {
		t.Fatal("nil writer token must be unknown and accept writes")
	}
	if got := w.update(func(tokenState) tokenState { return tokenKnown(2) }); got != tokenUnknown {
		t.Fatalf("update on nil: %v", got)
	}
}

func TestNodeStateCarriesWriterToken(t *testing.T) {
	d := testDaemon()
	var log bytes.Buffer
	d.writer = loadWriterToken(t.TempDir(), testLogger(&log))
	h := pg.Health{Running: true, Accepting: true, CurrentLSN: 7000, Timeline: 1}
	if s := d.nodeState(h, mesh.DataReady, 42, nil); s.WriterTokenKnown {
		t.Fatalf("unknown token gossiped as known: %+v", s)
	}
	for _, tc := range []struct {
		s     tokenState
		known bool
	}{{tokenKnown(0), true}, {tokenKnown(8), true}, {tokenPending, false}} {
		if err := d.writer.set(tc.s, "test"); err != nil {
			t.Fatal(err)
		}
		s := d.nodeState(h, mesh.DataReady, 42, nil)
		if s.WriterTokenKnown != tc.known || (tc.known && s.WriterToken != tc.s.Token) {
			t.Fatalf("%v: gossiped %d known=%v", tc.s, s.WriterToken, s.WriterTokenKnown)
		}
		c := election.CandidateFromMember(mesh.Member{State: s})
		if c.Position.TokenKnown != tc.known || c.Position.Token != s.WriterToken {
			t.Fatalf("%v: candidate position %+v", tc.s, c.Position)
		}
	}
}

func TestUpstreamIs(t *testing.T) {
	src := pg.Endpoint{Host: "10.0.0.1", Port: 5432}
	tests := []struct {
		h    pg.Health
		want bool
	}{
		{pg.Health{UpstreamHost: "10.0.0.1", UpstreamPort: 5432}, true},
		{pg.Health{UpstreamHost: "pg1.example", UpstreamPort: 5432}, true},
		{pg.Health{UpstreamHost: "10.0.0.1", UpstreamPort: 5433}, false},
		{pg.Health{}, false},
	}
	for _, tt := range tests {
		if got := upstreamIs(tt.h, src); got != tt.want {
			t.Errorf("upstreamIs(%s:%d) = %v, want %v", tt.h.UpstreamHost, tt.h.UpstreamPort, got, tt.want)
		}
	}
	if upstreamIs(pg.Health{}, pg.Endpoint{}) {
		t.Error("an empty endpoint matched an empty upstream")
	}
}

// A history rewound or re-cloned from the primary takes the primary's
// writer token at once (chaos finding 4), but only when the primary's
// gossiped token is the one it is named primary under.
func TestRejoinedToken(t *testing.T) {
	for _, tt := range []struct {
		name   string
		writer uint64
		known  bool
		token  uint64
		want   tokenState
	}{
		{"source writes under its token", 7, true, 7, tokenKnown(7)},
		{"source's gossip predates its promotion", 6, true, 7, tokenUnknown},
		{"source reports no writer token", 0, false, 7, tokenUnknown},
		{"bootstrap primary under token 0", 0, true, 0, tokenKnown(0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := rejoinedToken(tt.writer, tt.known, tt.token); got != tt.want {
				t.Fatalf("rejoinedToken(%d, %t, %d) = %v, want %v", tt.writer, tt.known, tt.token, got, tt.want)
			}
		})
	}
}

// Every replacement of the history (a pending state set) is counted, so
// that positions seen before it are forgotten even when the new history
// is reported under a known token without a pending report in between.
func TestWriterTokenReplacements(t *testing.T) {
	var log bytes.Buffer
	w := loadWriterToken(t.TempDir(), testLogger(&log))
	steps := []struct {
		set  tokenState
		want uint64
	}{
		{tokenKnown(3), 0},
		{tokenPending, 1},
		{tokenPending, 1}, // a retried rejoin: still the same replacement
		{tokenKnown(4), 1},
		{tokenUnknown, 1},
		{tokenPending, 2},
		{tokenKnown(5), 2},
	}
	for i, s := range steps {
		if err := w.set(s.set, "test"); err != nil {
			t.Fatal(err)
		}
		if got := w.replacements(); got != s.want {
			t.Fatalf("step %d (%v): replacements = %d, want %d", i, s.set, got, s.want)
		}
	}
	var nilW *writerToken
	if nilW.replacements() != 0 {
		t.Fatal("nil writer token counts replacements")
	}
}
