package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuditLog(t *testing.T) {
	file := &lockedWriter{w: &bytes.Buffer{}}
	auditLogs := &bytes.Buffer{}
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op), func(c *Config, _ *fakeSource) {
		c.AuditFile = file
		c.AuditLogger = slog.New(slog.NewJSONHandler(&lockedWriter{w: auditLogs}, nil)).With("component", "audit")
		c.Limits = Limits{TrustedProxies: []string{"10.0.0.1"}, BlockedIPs: []string{"203.0.113.66"}}
	})
	const wrong = "wrong-token-0123456789abcdef"
	type want struct {
		who, client, peer, method, path string
		status                          int
	}
	var wants []want
	for _, c := range []struct {
		q req
		w want
	}{
		{req{peer: "192.0.2.1:1", method: "POST", target: "/api/v1/cluster/switchover", token: testAdminToken, body: `{"candidate":2}`},
			want{"admin", "192.0.2.1", "", "POST", "/api/v1/cluster/switchover", 200}},
		{req{peer: "192.0.2.1:1", method: "POST", target: "/api/v1/cluster/maintenance", token: testReadToken, body: `{"enabled":true}`},
			want{"read", "192.0.2.1", "", "POST", "/api/v1/cluster/maintenance", 403}},
		{req{peer: "192.0.2.2:1", method: "POST", target: "/api/v1/cluster/failover", body: `{"candidate":2}`},
			want{"none", "192.0.2.2", "", "POST", "/api/v1/cluster/failover", 401}},
		{req{peer: "192.0.2.2:1", method: "DELETE", target: "/api/v1/cluster/switchover", token: wrong},
			want{"none", "192.0.2.2", "", "DELETE", "/api/v1/cluster/switchover", 401}},
		{req{peer: "10.0.0.1:1", xff: "198.51.100.7", method: "DELETE", target: "/api/v1/cluster/switchover", token: testAdminToken},
			want{"admin", "198.51.100.7", "10.0.0.1", "DELETE", "/api/v1/cluster/switchover", 200}},
		{req{peer: "192.0.2.3:1", method: "PUT", target: "/api/v1/cluster/status", token: testAdminToken},
			want{"admin", "192.0.2.3", "", "PUT", "/api/v1/cluster/status", 405}},
		{req{peer: "192.0.2.3:1", method: "POST", target: "/nope", token: testAdminToken},
			want{"admin", "192.0.2.3", "", "POST", "/nope", 404}},
		{req{peer: "203.0.113.66:1", method: "POST", target: "/api/v1/cluster/maintenance", token: testAdminToken, body: `{"enabled":false}`},
			want{"admin", "203.0.113.66", "", "POST", "/api/v1/cluster/maintenance", 403}},
		// Reads are not audited.
		{req{peer: "192.0.2.1:1", target: "/api/v1/cluster/status", token: testAdminToken}, want{}},
		{req{peer: "192.0.2.1:1", method: "HEAD", target: "/api/v1/cluster/maintenance", token: testAdminToken}, want{}},
		{req{peer: "192.0.2.1:1", method: "OPTIONS", target: "/primary"}, want{}},
	} {
		rec := a.serve(c.q)
		if c.w.method == "" {
			continue
		}
		if rec.Code != c.w.status {
			t.Fatalf("%s %s: %d, want %d: %s", c.q.method, c.q.target, rec.Code, c.w.status, rec.Body)
		}
		wants = append(wants, c.w)
	}

	lines := strings.Split(strings.TrimSuffix(file.w.String(), "\n"), "\n")
	if len(lines) != len(wants) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(wants), file.w)
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		w := wants[i]
		if got["who"] != w.who || got["client"] != w.client || got["method"] != w.method ||
			got["path"] != w.path || got["status"] != float64(w.status) {
			t.Errorf("line %d: %s\nwant %+v", i, line, w)
		}
		if peer, _ := got["peer"].(string); peer != w.peer {
			t.Errorf("line %d: peer %q, want %q", i, peer, w.peer)
		}
		if _, ok := got["duration_ms"].(float64); !ok {
			t.Errorf("line %d: no duration_ms: %s", i, line)
		}
		if ts, _ := got["time"].(string); ts == "" {
			t.Errorf("line %d: no time", i)
		} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("line %d: time %q: %v", i, ts, err)
		}
	}

	logged := auditLogs.String()
	if n := strings.Count(logged, `"component":"audit"`); n != len(wants) {
		t.Errorf("%d audit log records, want %d:\n%s", n, len(wants), logged)
	}
	if !strings.Contains(logged, `"who":"admin"`) || !strings.Contains(logged, `"status":401`) {
		t.Errorf("audit log records lack who or status:\n%s", logged)
	}
	for _, where := range []struct{ name, text string }{{"file", file.w.String()}, {"audit log", logged}, {"api log", a.logs.String()}} {
		for _, tok := range []string{testAdminToken, testReadToken, wrong, "Bearer"} {
			if strings.Contains(where.text, tok) {
				t.Errorf("the %s contains %q", where.name, tok)
			}
		}
	}
}

// failingWriter fails while broken is set.
type failingWriter struct {
	mu     sync.Mutex
	broken bool
	buf    bytes.Buffer
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return 0, errors.New("disk full")
	}
	return f.buf.Write(p)
}

// TestAuditLogWriteFailure: a failing audit file does not fail requests,
// is reported once, and its recovery too.
func TestAuditLogWriteFailure(t *testing.T) {
	w := &failingWriter{broken: true}
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op), func(c *Config, _ *fakeSource) { c.AuditFile = w })
	for range 3 {
		if rec := a.send("DELETE", "/api/v1/cluster/switchover", ""); rec.Code != 200 {
			t.Fatalf("%d", rec.Code)
		}
	}
	w.mu.Lock()
	w.broken = false
	w.mu.Unlock()
	a.send("DELETE", "/api/v1/cluster/switchover", "")
	logs := a.logs.String()
	if n := strings.Count(logs, "writing the audit log failed"); n != 1 {
		t.Errorf("failure reported %d times:\n%s", n, logs)
	}
	if !strings.Contains(logs, "works again") || strings.Count(w.buf.String(), "\n") != 1 {
		t.Errorf("recovery: %q\n%s", w.buf.String(), logs)
	}
}
