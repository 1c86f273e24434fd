package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var apiRoutes = []string{
	"/api/v1/health",
	"/api/v1/node/info",
	"/api/v1/node/health",
	"/api/v1/cluster/status",
	"/api/v1/cluster/nodes/1",
	"/api/v1/cluster/health",
	"/api/v1/replication/status",
}

func TestNewHandlerNeedsSource(t *testing.T) {
	_, err := NewHandler(Config{})
	if err == nil || !strings.HasPrefix(err.Error(), "api: ") {
		t.Fatalf("err = %v, want an api: error", err)
	}
}

func TestNewHandlerDefaults(t *testing.T) {
	// No logger, no clock, no metrics: must still serve.
	h, err := NewHandler(Config{Source: &fakeSource{members: threeNodes(1), health: primaryHealth(), node: testNodeInfo(1, "pg1")}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cluster/status", nil))
	env := envelopeOf(t, rec)
	ts, _ := time.Parse(time.RFC3339, env.Timestamp)
	if time.Since(ts) > time.Minute || time.Since(ts) < -time.Minute {
		t.Errorf("default clock timestamp %s is not now", env.Timestamp)
	}
}

func TestEnvelopeOnEveryEndpoint(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	for _, path := range apiRoutes {
		t.Run(path, func(t *testing.T) {
			rec := a.do("GET", path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			env := envelopeOf(t, rec)
			if env.Timestamp != "2024-05-01T12:00:00.000Z" {
				t.Errorf("timestamp = %q, want the injected clock", env.Timestamp)
			}
			if string(env.Data) == "null" {
				t.Error("data is null on success")
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("missing Cache-Control: no-store")
			}
		})
	}
}

func TestHealthEndpoint(t *testing.T) {
	// The daemon health answers 200 even when PostgreSQL is down.
	a := newTestAPI(t, 1, downHealth())
	rec := a.do("GET", "/api/v1/health")
	env := envelopeOf(t, rec)
	if rec.Code != 200 || string(env.Data) != `{"status":"ok"}` {
		t.Errorf("got %d %s", rec.Code, env.Data)
	}
}

func TestHeadOnAPIHasNoBody(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	for _, path := range apiRoutes {
		get := a.do("GET", path)
		head := a.do("HEAD", path)
		if head.Code != get.Code {
			t.Errorf("HEAD %s = %d, GET = %d", path, head.Code, get.Code)
		}
		if head.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body: %q", path, head.Body)
		}
		if head.Header().Get("Content-Length") == "" {
			t.Errorf("HEAD %s lacks Content-Length", path)
		}
	}
}

func TestNotFound(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	tests := []struct{ path, msg string }{
		{"/api/v1/nope", "no such endpoint: /api/v1/nope"},
		{"/api/v1/cluster", "no such endpoint: /api/v1/cluster"},
		{"/api/v1/cluster/nodes/", "no such endpoint: /api/v1/cluster/nodes/"},
		{"/api/v1/health/extra", "no such endpoint: /api/v1/health/extra"},
		{"/api/v2/health", "no such endpoint: /api/v2/health"},
		{"/nope", "no such endpoint: /nope"},
		{"/api/v1/cluster/nodes/7", "node 7 not found"},
		{"/api/v1/cluster/nodes/-1", "node -1 not found"},
	}
	for _, tt := range tests {
		rec := a.do("GET", tt.path)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", tt.path, rec.Code)
			continue
		}
		env := envelopeOf(t, rec)
		if *env.Message != tt.msg {
			t.Errorf("GET %s message = %q, want %q", tt.path, *env.Message, tt.msg)
		}
		if string(env.Data) != "null" {
			t.Errorf("GET %s data = %s, want null", tt.path, env.Data)
		}
	}
}

func TestBadNodeID(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	for _, id := range []string{"abc", "1.5", "0x1", "99999999999999999999", "%20", "1e3"} {
		rec := a.do("GET", "/api/v1/cluster/nodes/"+id)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("id %q: status %d, want 400", id, rec.Code)
			continue
		}
		env := envelopeOf(t, rec)
		if !strings.Contains(*env.Message, "invalid node id") {
			t.Errorf("id %q: message %q", id, *env.Message)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	// Routes that also accept a mutating method (served by operations).
	allowAlso := map[string]string{"/api/v1/cluster/nodes/1": "DELETE"}
	for _, path := range apiRoutes {
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"} {
			if m == allowAlso[path] {
				continue
			}
			want := "GET, HEAD"
			if extra := allowAlso[path]; extra != "" {
				want += ", " + extra
			}
			rec := a.do(m, path)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", m, path, rec.Code)
				continue
			}
			if got := rec.Header().Get("Allow"); got != want {
				t.Errorf("%s %s Allow = %q", m, path, got)
			}
			env := envelopeOf(t, rec)
			if !strings.Contains(*env.Message, "not allowed") {
				t.Errorf("%s %s message = %q", m, path, *env.Message)
			}
		}
	}
	for _, path := range checkPaths {
		rec := a.do("POST", path)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("POST %s = %d Allow %q", path, rec.Code, rec.Header().Get("Allow"))
		}
		envelopeOf(t, rec)
	}
}

func TestNewServer(t *testing.T) {
	h := http.NewServeMux()
	s := NewServer("127.0.0.1:0", h)
	if s.Addr != "127.0.0.1:0" || s.Handler != h {
		t.Fatal("address or handler not set")
	}
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("timeouts not all set: %+v", s)
	}
	if s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", s.MaxHeaderBytes)
	}
}

// TestOverRealServer checks what net/http itself puts on the wire: HEAD and
// OPTIONS carry no body, GET does.
func TestOverRealServer(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	srv := httptest.NewServer(a.h)
	defer srv.Close()
	for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
		req, _ := http.NewRequest(m, srv.URL+"/primary", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s /primary = %d", m, resp.StatusCode)
		}
		if m == "GET" && (err != nil || body["role"] != "primary") {
			t.Errorf("GET body: %v %v", body, err)
		}
		if m != "GET" && err == nil {
			t.Errorf("%s /primary has a body: %v", m, body)
		}
	}
}
