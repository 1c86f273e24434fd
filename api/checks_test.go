package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

var checkPaths = []string{"/", "/primary", "/read-write", "/leader", "/replica", "/read-only", "/health", "/liveness", "/readiness"}

// scenario is one local situation the checks are asked about.
type scenario struct {
	name   string
	self   int
	health pg.Health
	tags   map[string]string
	// edit adjusts the gossiped view.
	edit func(ms []mesh.Member) []mesh.Member
}

func (sc scenario) api(t testing.TB) *testAPI {
	a := newTestAPI(t, sc.self, sc.health)
	a.src.set(func(f *fakeSource) {
		f.node.Tags = sc.tags
		if sc.edit != nil {
			f.members = sc.edit(f.members)
		}
	})
	return a
}

var (
	scPrimary      = scenario{name: "primary", self: 1, health: primaryHealth()}
	scReplica      = scenario{name: "replica streaming", self: 2, health: replicaHealth()}
	scNotStreaming = scenario{name: "replica not streaming", self: 2, health: notStreamingHealth()}
	scDown         = scenario{name: "pg down", self: 2, health: downHealth()}
	scNotAccepting = scenario{name: "primary not accepting", self: 1, health: func() pg.Health {
		h := primaryHealth()
		h.Accepting = false
		return h
	}()}
	scNoLB = scenario{name: "replica noloadbalance", self: 2, health: replicaHealth(),
		tags: map[string]string{"noloadbalance": "true"}}
	// pg3 replays at 2/FFFFF000 while the primary is at 3/1000: 8 KiB
	// behind, although its (older) gossip says 4 KiB.
	scLagging = scenario{name: "replica lagging", self: 3, health: func() pg.Health {
		h := replicaHealth()
		h.ReceiveLSN, h.ReplayLSN = 0x3_0000_0000, 0x2_FFFF_F000
		return h
	}()}
	scTagged = scenario{name: "replica tagged", self: 2, health: replicaHealth(),
		tags: map[string]string{"nodetype": "analytics"}}
	scPrimaryNoLB = scenario{name: "primary noloadbalance", self: 1, health: primaryHealth(),
		tags: map[string]string{"noloadbalance": "true", "nodetype": "analytics"}}
	// A replica alone: no self entry and no primary in the view, so its
	// byte lag cannot be known.
	scLagUnknown = scenario{name: "replica lag unknown", self: 2, health: replicaHealth(),
		edit: func([]mesh.Member) []mesh.Member { return nil }}
)

// TestCheckMatrix: every check path against every situation, with each of
// GET, HEAD and OPTIONS giving the same status.
func TestCheckMatrix(t *testing.T) {
	//                                /    primary rw   leader replica ro   health live ready
	matrix := []struct {
		sc   scenario
		want [9]int
	}{
		{scPrimary, [9]int{200, 200, 200, 200, 503, 200, 200, 200, 200}},
		{scReplica, [9]int{503, 503, 503, 503, 200, 200, 200, 200, 200}},
		{scNotStreaming, [9]int{503, 503, 503, 503, 503, 503, 200, 200, 503}},
		{scDown, [9]int{503, 503, 503, 503, 503, 503, 503, 200, 503}},
		{scNotAccepting, [9]int{503, 503, 503, 503, 503, 503, 503, 200, 503}},
		{scNoLB, [9]int{503, 503, 503, 503, 503, 503, 200, 200, 200}},
		{scPrimaryNoLB, [9]int{200, 200, 200, 200, 503, 200, 200, 200, 200}},
		{scLagging, [9]int{503, 503, 503, 503, 200, 200, 200, 200, 200}},
	}
	for _, row := range matrix {
		a := row.sc.api(t)
		for i, path := range checkPaths {
			assertCheck(t, a, row.sc.name, path, row.want[i])
		}
	}
}

// TestCheckQueries covers ?lag=, ?replication_state= and ?tag_*=.
func TestCheckQueries(t *testing.T) {
	tests := []struct {
		sc     scenario
		target string
		want   int
	}{
		// pg2 is 2 KiB behind (gossip and local estimate agree).
		{scReplica, "/replica?lag=2048", 200},
		{scReplica, "/replica?lag=2047", 503},
		{scReplica, "/replica?lag=2kB", 200},
		{scReplica, "/replica?lag=1kB", 503},
		{scReplica, "/replica?lag=10MB", 200},
		{scReplica, "/replica?lag=10mb", 200},
		{scReplica, "/replica?lag=0", 503},
		{scReplica, "/replica?lag=1GB&lag=0", 200}, // first value counts
		{scReplica, "/read-only?lag=1kB", 503},
		{scReplica, "/readiness?lag=16kB", 200},
		{scReplica, "/readiness?lag=1kB", 503},
		// pg3: the larger estimate (8 KiB) counts.
		{scLagging, "/replica?lag=4096", 503},
		{scLagging, "/replica?lag=8kB", 200},
		{scLagging, "/read-only?lag=4kB", 503},
		{scLagging, "/readiness?lag=4kB", 503},
		{scLagging, "/readiness", 200},
		// A bound that cannot be verified is not met.
		{scLagUnknown, "/replica?lag=1MB", 503},
		{scLagUnknown, "/replica", 200},
		// The primary has no lag; endpoints that ignore lag ignore junk.
		{scPrimary, "/read-only?lag=0", 200},
		{scPrimary, "/readiness?lag=0", 200},
		{scPrimary, "/primary?lag=garbage", 200},
		{scPrimary, "/?lag=garbage", 200},
		{scPrimary, "/health?lag=garbage", 200},
		{scPrimary, "/liveness?lag=garbage", 200},
		// A bad bound is the caller's error, wherever it is read.
		{scPrimary, "/replica?lag=garbage", 400},
		{scReplica, "/replica?lag=-1", 400},
		{scReplica, "/replica?lag=1.5GB", 400},
		{scReplica, "/replica?lag=", 400},
		{scReplica, "/read-only?lag=10PB", 400},
		{scReplica, "/readiness?lag=99999999999999999999", 400},
		{scReplica, "/replica?lag=%zz", 400},
		// replication_state.
		{scReplica, "/replica?replication_state=streaming", 200},
		{scReplica, "/replica?replication_state=catchup", 503},
		{scNotStreaming, "/replica?replication_state=startup", 503},
		// Tag filters, as Patroni applies them.
		{scTagged, "/replica?tag_nodetype=analytics", 200},
		{scTagged, "/replica?tag_nodetype=oltp", 503},
		{scTagged, "/replica?tag_missing=x", 503},
		{scTagged, "/replica?tag_nodetype=analytics&tag_missing=x", 503},
		{scTagged, "/replica?tag_nodetype=Analytics", 503},
		{scTagged, "/read-only?tag_nodetype=analytics&lag=1MB", 200},
		{scTagged, "/health?tag_nodetype=oltp", 503},
		{scTagged, "/liveness?tag_nodetype=oltp", 200},
		{scTagged, "/readiness?tag_nodetype=oltp", 200},
		{scReplica, "/replica?tag_=x", 503},
		{scPrimaryNoLB, "/primary?tag_nodetype=oltp", 200}, // primary checks ignore tags
		{scPrimaryNoLB, "/leader?tag_nodetype=oltp", 200},
		{scPrimaryNoLB, "/read-only?tag_nodetype=oltp", 503},
		{scPrimaryNoLB, "/read-only?tag_nodetype=analytics", 200},
		// noloadbalance spellings.
		{scenario{name: "nolb True", self: 2, health: replicaHealth(), tags: map[string]string{"noloadbalance": "True"}}, "/replica", 503},
		{scenario{name: "nolb on", self: 2, health: replicaHealth(), tags: map[string]string{"noloadbalance": "on"}}, "/replica", 503},
		{scenario{name: "nolb false", self: 2, health: replicaHealth(), tags: map[string]string{"noloadbalance": "false"}}, "/replica", 200},
		{scenario{name: "nolb empty", self: 2, health: replicaHealth(), tags: map[string]string{"noloadbalance": ""}}, "/replica", 200},
	}
	for _, tt := range tests {
		assertCheck(t, tt.sc.api(t), tt.sc.name, tt.target, tt.want)
	}
}

// assertCheck asks target with GET, HEAD and OPTIONS.
func assertCheck(t *testing.T, a *testAPI, name, target string, want int) {
	t.Helper()
	for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
		rec := a.do(m, target)
		if rec.Code != want {
			t.Errorf("%s: %s %s = %d, want %d (body %s)", name, m, target, rec.Code, want, rec.Body)
			continue
		}
		if m != "GET" {
			if rec.Body.Len() != 0 {
				t.Errorf("%s: %s %s has a body: %q", name, m, target, rec.Body)
			}
			continue
		}
		if want == http.StatusBadRequest {
			env := envelopeOf(t, rec)
			if *env.Message == "" || strings.HasPrefix(*env.Message, "api:") {
				t.Errorf("%s: %s: 400 message %q", name, target, *env.Message)
			}
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%s: GET %s body is not JSON: %v", name, target, err)
			continue
		}
		if body["role"] == nil || body["state"] == nil {
			t.Errorf("%s: GET %s body lacks role/state: %s", name, target, rec.Body)
		}
		if reason, _ := body["reason"].(string); (want == 503) != (reason != "") {
			t.Errorf("%s: GET %s = %d with reason %q", name, target, want, reason)
		}
	}
}

func TestCheckBody(t *testing.T) {
	a := scReplica.api(t)
	rec := a.do("GET", "/replica?lag=1kB")
	var body checkStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Role != mesh.RoleReplica || body.State != "running" || body.ReplicationState != "streaming" {
		t.Errorf("body = %+v", body)
	}
	if body.XLog.ReplayedLocation != 0x3_0000_0800 || body.Timeline != 2 {
		t.Errorf("xlog/timeline = %+v %d", body.XLog, body.Timeline)
	}
	if body.Reason != "replication lag 2048 bytes exceeds maximum 1024" {
		t.Errorf("reason = %q", body.Reason)
	}
	if body.Ramd.Scope != "demo" || body.Ramd.Name != "pg2" || body.SystemID != "7268616322854375442" {
		t.Errorf("identity = %+v %q", body.Ramd, body.SystemID)
	}

	rec = scDown.api(t).do("GET", "/health")
	body = checkStatus{}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if body.State != "stopped" || body.Role != mesh.RoleUnknown || body.Reason != "PostgreSQL is not running" {
		t.Errorf("down body = %+v", body)
	}
}

func TestIsWritablePrimary(t *testing.T) {
	s := &server{}
	tests := []struct {
		h    pg.Health
		want bool
	}{
		{primaryHealth(), true},
		{replicaHealth(), false},
		{downHealth(), false},
		{pg.Health{Running: true}, false},
		{pg.Health{Accepting: true}, false}, // no postmaster: the answer was stale
	}
	for i, tt := range tests {
		if got := s.isWritablePrimary(tt.h); got != tt.want {
			t.Errorf("%d: isWritablePrimary = %v, want %v", i, got, tt.want)
		}
	}
}
