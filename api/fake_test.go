package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/metrics"
	"github.com/ramd/ramd/pg"
)

// fakeSource is an in-memory Source for pure logic tests.
type fakeSource struct {
	mu      sync.Mutex
	members []mesh.Member
	health  pg.Health
	node    NodeInfo
	// panicMembers makes Members panic, to exercise the recovery
	// middleware.
	panicMembers bool
}

func (f *fakeSource) Members() []mesh.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicMembers {
		panic("fake source exploded")
	}
	// A copy, like the real mesh, so tests can check the API never
	// writes into it.
	out := make([]mesh.Member, len(f.members))
	copy(out, f.members)
	return out
}

func (f *fakeSource) LocalHealth() pg.Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeSource) Node() NodeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node
}

func (f *fakeSource) set(fn func(f *fakeSource)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// versionedSource adds a view version, enabling the status cache.
type versionedSource struct {
	*fakeSource
	version uint64
}

func (v *versionedSource) ViewVersion() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.version
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Local health fixtures.
func primaryHealth() pg.Health {
	return pg.Health{
		CheckedAt: testNow.Add(-200 * time.Millisecond),
		Running:   true, Accepting: true, Timeline: 2,
		CurrentLSN: 0x3_0000_1000, SystemID: 7268616322854375442, Version: "15.6",
		Standbys: []pg.Standby{
			{ApplicationName: "pg2", ClientAddr: "10.0.0.2", State: "streaming", SyncState: "async",
				WriteLagBytes: 10, FlushLagBytes: 20, ReplayLagBytes: 30,
				WriteLagSeconds: 0.001, FlushLagSeconds: 0.002, ReplayLagSeconds: 0.003},
			{ApplicationName: "pg_receivewal", ClientAddr: "10.0.0.9", State: "streaming", SyncState: "sync"},
		},
	}
}

func replicaHealth() pg.Health {
	return pg.Health{
		CheckedAt: testNow.Add(-200 * time.Millisecond),
		Running:   true, Accepting: true, InRecovery: true, Timeline: 2,
		ReceiveLSN: 0x3_0000_0800, ReplayLSN: 0x3_0000_0800,
		Streaming: true, ReceiverStatus: "streaming", UpstreamHost: "10.0.0.1", UpstreamPort: 5432,
		LagSeconds: 0.5, SystemID: 7268616322854375442, Version: "15.6",
	}
}

func notStreamingHealth() pg.Health {
	h := replicaHealth()
	h.Streaming = false
	h.ReceiverStatus = "startup"
	return h
}

func downHealth() pg.Health {
	return pg.Health{CheckedAt: testNow.Add(-time.Second), Error: "connection refused"}
}

// member builds a gossiped member.
func member(id int, name string, role mesh.Role, l mesh.Liveness, healthy bool) mesh.Member {
	return mesh.Member{
		State: mesh.NodeState{
			NodeID: id, Name: name, ClusterName: "demo", Role: role,
			PGRunning: true, Healthy: healthy, Timeline: 2,
			APIURL: "http://10.0.0." + string(rune('0'+id)) + ":8080",
			PGHost: "10.0.0." + string(rune('0'+id)), PGPort: 5432,
			Streaming: role == mesh.RoleReplica && healthy,
			DataState: mesh.DataReady, PGVersion: "15.6",
		},
		Liveness: l,
		Addr:     "10.0.0." + string(rune('0'+id)) + ":7946",
		LastSeen: testNow.Add(-1500 * time.Millisecond),
	}
}

// threeNodes is a healthy cluster: pg1 primary, pg2 and pg3 replicas.
// selfID marks which one is this node.
func threeNodes(selfID int) []mesh.Member {
	ms := []mesh.Member{
		member(1, "pg1", mesh.RolePrimary, mesh.Alive, true),
		member(2, "pg2", mesh.RoleReplica, mesh.Alive, true),
		member(3, "pg3", mesh.RoleReplica, mesh.Alive, true),
	}
	ms[0].State.LSN = 0x3_0000_1000
	ms[0].State.ReplayLSN = 0x3_0000_1000
	ms[1].State.LSN, ms[1].State.ReplayLSN, ms[1].State.LagBytes, ms[1].State.LagSeconds = 0x3_0000_0800, 0x3_0000_0800, 0x800, 0.5
	ms[2].State.LSN, ms[2].State.ReplayLSN, ms[2].State.LagBytes, ms[2].State.LagSeconds = 0x3_0000_0000, 0x2_FFFF_F000, 0x1000, 1.25
	for i := range ms {
		if ms[i].State.NodeID == selfID {
			ms[i].Self = true
			ms[i].LastSeen = time.Time{}
		}
	}
	return ms
}

func testNodeInfo(id int, name string) NodeInfo {
	return NodeInfo{
		NodeID: id, Name: name, ClusterName: "demo", Version: "0.1.0",
		DataDirectory: "/var/lib/ramd/data", APIURL: "http://10.0.0.2:8080",
		MeshAddr: "10.0.0.2:7946", PGHost: "10.0.0.2", PGPort: 5432,
		StartedAt: testNow.Add(-90 * time.Second),
	}
}

// testAPI bundles a handler with its fake source and clock.
type testAPI struct {
	src   *fakeSource
	clock *fakeClock
	h     http.Handler
	logs  *bytes.Buffer
}

type apiOption func(*Config, *fakeSource)

func withMetrics(m *metrics.Metrics) apiOption {
	return func(c *Config, _ *fakeSource) { c.Metrics = m }
}

// quiet drops logs, as a production logger at info level would.
func quiet() apiOption {
	return func(c *Config, _ *fakeSource) { c.Logger = nil }
}

func versioned(v *versionedSource) apiOption {
	return func(c *Config, f *fakeSource) { v.fakeSource = f; c.Source = v }
}

func newTestAPI(t testing.TB, selfID int, health pg.Health, opts ...apiOption) *testAPI {
	src := &fakeSource{
		members: threeNodes(selfID),
		health:  health,
		node:    testNodeInfo(selfID, "pg"+string(rune('0'+selfID))),
	}
	clock := &fakeClock{t: testNow}
	logs := &bytes.Buffer{}
	cfg := Config{
		Source: src,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    clock.Now,
	}
	for _, o := range opts {
		o(&cfg, src)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &testAPI{src: src, clock: clock, h: h, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (a *testAPI) do(method, target string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

// testEnvelope is the decoded envelope with data kept raw.
type testEnvelope struct {
	Success   *bool           `json:"success"`
	Data      json.RawMessage `json:"data"`
	Message   *string         `json:"message"`
	Timestamp string          `json:"timestamp"`
}

// envelopeOf decodes and validates the envelope shape of a response.
func envelopeOf(t *testing.T, rec *httptest.ResponseRecorder) testEnvelope {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, rec.Body)
	}
	for _, k := range []string{"success", "data", "message", "timestamp"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("envelope lacks %q: %s", k, rec.Body)
		}
	}
	if len(raw) != 4 {
		t.Errorf("envelope has %d keys, want 4: %s", len(raw), rec.Body)
	}
	var env testEnvelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	if env.Success == nil || env.Message == nil {
		t.Fatalf("success or message missing or null: %s", rec.Body)
	}
	if *env.Success != (rec.Code < 400) {
		t.Errorf("success = %v with status %d", *env.Success, rec.Code)
	}
	ts, err := time.Parse(time.RFC3339, env.Timestamp)
	if err != nil {
		t.Errorf("timestamp %q is not RFC 3339: %v", env.Timestamp, err)
	} else if _, off := ts.Zone(); off != 0 || env.Timestamp[len(env.Timestamp)-1] != 'Z' {
		t.Errorf("timestamp %q is not UTC", env.Timestamp)
	}
	return env
}

func decodeData[T any](t *testing.T, env testEnvelope) T {
	t.Helper()
	var out T
	if err := json.Unmarshal(env.Data, &out); err != nil {
		t.Fatalf("data: %v\n%s", err, env.Data)
	}
	return out
}
