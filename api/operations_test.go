package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeOperator records calls and answers with err (if set).
type fakeOperator struct {
	*fakeSource
	candidate   int
	maintenance *bool
	cancelled   bool
	allowLoss   bool
	err         error
	// keys is the gossip keyring (keys_test.go).
	keys [][]byte
}

func (f *fakeOperator) Switchover(_ context.Context, c int, at time.Time) (SwitchoverResult, error) {
	f.candidate = c
	if f.err != nil {
		return SwitchoverResult{}, f.err
	}
	if !at.IsZero() {
		return SwitchoverResult{OldPrimary: 1, ScheduledAt: at.Format(time.RFC3339)}, nil
	}
	return SwitchoverResult{OldPrimary: 1, NewPrimary: max(c, 2), FencingToken: 5, TookMs: 400}, nil
}

func (f *fakeOperator) Failover(_ context.Context, c int, allow bool) (SwitchoverResult, error) {
	f.candidate, f.allowLoss = c, allow
	if f.err != nil {
		return SwitchoverResult{}, f.err
	}
	return SwitchoverResult{OldPrimary: 1, NewPrimary: c, FencingToken: 2, TookMs: 2500}, nil
}

func (f *fakeOperator) SetReplication(_ context.Context, node int, attached bool) error {
	f.candidate, f.allowLoss = node, attached
	return f.err
}

func (f *fakeOperator) AddNode(_ context.Context, id int, addr string, port int) (NodeMembership, error) {
	f.candidate = id
	return NodeMembership{NodeID: id, Role: "voter"}, f.err
}

func (f *fakeOperator) RemoveNode(_ context.Context, id int) error {
	f.candidate = id
	return f.err
}

func (f *fakeOperator) CancelSwitchover(context.Context) error {
	f.cancelled = true
	return f.err
}

func (f *fakeOperator) SetMaintenance(_ context.Context, on bool) error {
	f.maintenance = &on
	return f.err
}

func (f *fakeOperator) History() []HistoryEntry {
	return []HistoryEntry{{FencingToken: 1, New: 1, Reason: "bootstrap"}, {FencingToken: 2, Old: 1, New: 2, Reason: "switchover from 1"}}
}

const (
	testAdminToken = "admin-token-0123456789"
	testReadToken  = "read-token-0123456789"
)

func withOperator(op *fakeOperator) apiOption {
	return func(c *Config, f *fakeSource) {
		op.fakeSource = f
		c.Source = op
		c.Auth = AuthConfig{AdminToken: testAdminToken, ReadToken: testReadToken, PublicHealthChecks: true}
	}
}

// send makes a request with the admin token.
func (a *testAPI) send(method, target, body string) *httptest.ResponseRecorder {
	return a.sendAs(testAdminToken, method, target, body)
}

func (a *testAPI) sendAs(token, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

func TestSwitchoverEndpoint(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, c := range []struct {
		body, want string
		code, cand int
	}{
		{"", "switched over from node 1 to node 2", 200, 0},
		{`{}`, "switched over", 200, 0},
		{`{"candidate": 3}`, "to node 3", 200, 3},
		{`{"candidate": 0}`, "candidate: 0 is not a node id", 400, -1},
		{`{"candidate": "3"}`, `field "candidate" must be int`, 400, -1},
		{`{"candiate": 3}`, `unknown field "candiate"`, 400, -1},
		{`{"candidate": 3} {}`, "trailing data", 400, -1},
		{`{"candidate": 3`, "invalid JSON body", 400, -1},
		{`{"scheduled_at": "` + testNow.Add(time.Hour).Format(time.RFC3339) + `"}`, "scheduled at", 202, 0},
		{`{"scheduled_at": "` + testNow.Add(-time.Hour).Format(time.RFC3339) + `"}`, "not in the future", 400, -1},
		{`{"scheduled_at": "tomorrow"}`, "not an RFC 3339 time", 400, -1},
		{`{"candidate": ` + strings.Repeat("1", maxBody) + `}`, "larger than", 413, -1},
	} {
		op.candidate = -1
		rec := a.send("POST", "/api/v1/cluster/switchover", c.body)
		env := envelopeOf(t, rec)
		if rec.Code != c.code || !strings.Contains(*env.Message, c.want) || op.candidate != c.cand {
			t.Errorf("POST %.40q: %d %q (candidate %d), want %d containing %q (candidate %d)", c.body, rec.Code, *env.Message, op.candidate, c.code, c.want, c.cand)
		}
	}
	op.err = &OpError{Status: http.StatusPreconditionFailed, Message: "candidate node 3 lags"}
	if rec := a.send("POST", "/api/v1/cluster/switchover", `{"candidate": 3}`); rec.Code != 412 || !strings.Contains(*envelopeOf(t, rec).Message, "lags") {
		t.Errorf("refusal: %d %s", rec.Code, rec.Body)
	}
	op.err = errors.New("boom")
	if rec := a.send("POST", "/api/v1/cluster/switchover", ""); rec.Code != 500 {
		t.Errorf("unexpected error: %d %s", rec.Code, rec.Body)
	}
	op.err = nil
	if rec := a.send("DELETE", "/api/v1/cluster/switchover", ""); rec.Code != 200 || !op.cancelled {
		t.Errorf("DELETE: %d %s", rec.Code, rec.Body)
	}
	rec := a.send("PUT", "/api/v1/cluster/switchover", "")
	if rec.Code != 405 || rec.Header().Get("Allow") != "POST, DELETE" {
		t.Errorf("PUT: %d Allow=%q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestFailoverEndpoint(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, c := range []struct {
		body       string
		code, cand int
		allow      bool
	}{
		{`{"candidate": 3}`, 200, 3, false},
		{`{"candidate": 2, "allow_data_loss": true}`, 200, 2, true},
		{`{}`, 400, -1, false},
		{``, 400, -1, false},
		{`{"candidate": -1}`, 400, -1, false},
		{`{"candidate": 2, "allow_data_loss": "yes"}`, 400, -1, false},
	} {
		op.candidate, op.allowLoss = -1, false
		rec := a.send("POST", "/api/v1/cluster/failover", c.body)
		envelopeOf(t, rec)
		if rec.Code != c.code || op.candidate != c.cand || op.allowLoss != c.allow {
			t.Errorf("POST %q: %d candidate %d allow %v, want %d %d %v", c.body, rec.Code, op.candidate, op.allowLoss, c.code, c.cand, c.allow)
		}
	}
	if rec := a.sendAs(testReadToken, "POST", "/api/v1/cluster/failover", `{"candidate": 3}`); rec.Code != 403 {
		t.Errorf("failover with the read token: %d", rec.Code)
	}
}

func TestReplicationEndpoints(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, c := range []struct {
		path, body string
		code, node int
		attached   bool
	}{
		{"/api/v1/replication/stop", `{"node_id": 2}`, 200, 2, false},
		{"/api/v1/replication/start", `{"node_id": 3}`, 200, 3, true},
		{"/api/v1/replication/stop", `{}`, 400, -1, false},
		{"/api/v1/replication/stop", `{"node_id": "2"}`, 400, -1, false},
		{"/api/v1/replication/start", `{"node_id": 0}`, 400, -1, false},
	} {
		op.candidate, op.allowLoss = -1, false
		rec := a.send("POST", c.path, c.body)
		envelopeOf(t, rec)
		if rec.Code != c.code || op.candidate != c.node || op.allowLoss != c.attached {
			t.Errorf("POST %s %q: %d node %d attached %v", c.path, c.body, rec.Code, op.candidate, op.allowLoss)
		}
	}
	op.err = &OpError{Status: 404, Message: "node 9 is not a member"}
	if rec := a.send("POST", "/api/v1/replication/stop", `{"node_id": 9}`); rec.Code != 404 {
		t.Errorf("unknown node: %d", rec.Code)
	}
}

func TestNodeEndpoints(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, c := range []struct {
		method, path, body string
		code, node         int
	}{
		{"POST", "/api/v1/cluster/add-node", `{"node_id": 4, "address": "10.0.0.4", "port": 7946}`, 200, 4},
		{"POST", "/api/v1/cluster/add-node", `{"node_id": 4, "hostname": "db4", "port": 7946}`, 200, 4},
		{"POST", "/api/v1/cluster/add-node", `{"node_id": 4, "address": "10.0.0.4:7946", "port": 7946}`, 400, -1},
		{"POST", "/api/v1/cluster/add-node", `{"node_id": 4, "address": "10.0.0.4"}`, 400, -1},
		{"POST", "/api/v1/cluster/add-node", `{"address": "10.0.0.4", "port": 7946}`, 400, -1},
		{"DELETE", "/api/v1/cluster/remove-node", `{"node_id": 3}`, 200, 3},
		{"DELETE", "/api/v1/cluster/nodes/3", ``, 200, 3},
		{"DELETE", "/api/v1/cluster/nodes/x", ``, 400, -1},
		{"DELETE", "/api/v1/cluster/remove-node", `{}`, 400, -1},
	} {
		op.candidate = -1
		rec := a.send(c.method, c.path, c.body)
		envelopeOf(t, rec)
		if rec.Code != c.code || op.candidate != c.node {
			t.Errorf("%s %s %q: %d node %d, want %d node %d: %s", c.method, c.path, c.body, rec.Code, op.candidate, c.code, c.node, rec.Body)
		}
	}
	if rec := a.sendAs("", "GET", "/api/v1/cluster/nodes/1", ""); rec.Code != 401 {
		t.Errorf("GET a node without a token (tokens configured): %d", rec.Code)
	}
	if rec := a.sendAs(testReadToken, "GET", "/api/v1/cluster/nodes/1", ""); rec.Code != 200 {
		t.Errorf("GET a node with the read token: %d", rec.Code)
	}
}

func TestMaintenanceEndpoint(t *testing.T) {
	op := &fakeOperator{}
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op))
	for _, c := range []struct {
		body string
		code int
		want *bool
	}{
		{`{"enabled": true}`, 200, ptr(true)},
		{`{"enabled": false}`, 200, ptr(false)},
		{`{}`, 400, nil},
		{``, 400, nil},
		{`{"enabled": "yes"}`, 400, nil},
	} {
		op.maintenance = nil
		rec := a.send("POST", "/api/v1/cluster/maintenance", c.body)
		envelopeOf(t, rec)
		if rec.Code != c.code || (c.want == nil) != (op.maintenance == nil) || (c.want != nil && *c.want != *op.maintenance) {
			t.Errorf("POST %q: %d, maintenance %v", c.body, rec.Code, op.maintenance)
		}
	}
	if rec := a.send("GET", "/api/v1/cluster/maintenance", ""); rec.Code != 200 {
		t.Errorf("GET: %d", rec.Code)
	}
}

func TestHistoryEndpoint(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), withOperator(&fakeOperator{}))
	rec := a.send("GET", "/api/v1/cluster/history", "")
	h := decodeData[[]HistoryEntry](t, envelopeOf(t, rec))
	if rec.Code != 200 || len(h) != 2 || h[1].Reason != "switchover from 1" {
		t.Fatalf("history: %d %s", rec.Code, rec.Body)
	}
}

func TestOperationsWithoutOperator(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth(), func(c *Config, _ *fakeSource) { c.Auth.AdminToken = testAdminToken })
	for _, target := range []string{"/api/v1/cluster/switchover", "/api/v1/cluster/maintenance"} {
		if rec := a.send("POST", target, `{"enabled": true}`); rec.Code != 501 {
			t.Errorf("POST %s without an operator: %d", target, rec.Code)
		}
	}
}

func ptr[T any](v T) *T { return &v }
