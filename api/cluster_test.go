package api

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

type testNode struct {
	NodeID     int               `json:"node_id"`
	Name       string            `json:"name"`
	Role       string            `json:"role"`
	State      string            `json:"state"`
	Healthy    bool              `json:"healthy"`
	Timeline   uint32            `json:"timeline"`
	LSN        string            `json:"lsn"`
	LSNBytes   uint64            `json:"lsn_bytes"`
	LagBytes   uint64            `json:"lag_bytes"`
	LagSeconds float64           `json:"lag_seconds"`
	APIURL     string            `json:"api_url"`
	PGHost     string            `json:"pg_host"`
	PGPort     int               `json:"pg_port"`
	Streaming  bool              `json:"streaming"`
	Tags       map[string]string `json:"tags"`
	LastSeenMs *int64            `json:"last_seen_ms"`
	Self       *bool             `json:"self"`
}

type testStatus struct {
	ClusterName   string     `json:"cluster_name"`
	PrimaryNodeID int        `json:"primary_node_id"`
	Nodes         []testNode `json:"nodes"`
	Warnings      []string   `json:"warnings"`
}

func TestClusterStatus(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	a.src.set(func(f *fakeSource) {
		// Out of order, with a suspect node and tags, as gossip delivers.
		slices.Reverse(f.members)
		f.members[0].Liveness = mesh.Suspect // pg3
		f.members[0].State.Tags = map[string]string{"nodetype": "analytics"}
	})
	rec := a.do("GET", "/api/v1/cluster/status")
	st := decodeData[testStatus](t, envelopeOf(t, rec))

	if st.ClusterName != "demo" || st.PrimaryNodeID != 1 {
		t.Errorf("cluster %q primary %d", st.ClusterName, st.PrimaryNodeID)
	}
	if st.Warnings == nil || len(st.Warnings) != 0 {
		t.Errorf("warnings = %#v, want []", st.Warnings)
	}
	if len(st.Nodes) != 3 || st.Nodes[0].NodeID != 1 || st.Nodes[1].NodeID != 2 || st.Nodes[2].NodeID != 3 {
		t.Fatalf("nodes not sorted by id: %+v", st.Nodes)
	}
	p, self, sus := st.Nodes[0], st.Nodes[1], st.Nodes[2]
	if p.Role != "primary" || p.State != "alive" || !p.Healthy || p.LSN != "3/1000" || p.LSNBytes != 0x3_0000_1000 || p.Timeline != 2 {
		t.Errorf("primary = %+v", p)
	}
	if p.APIURL != "http://10.0.0.1:8080" || p.PGHost != "10.0.0.1" || p.PGPort != 5432 {
		t.Errorf("primary addresses = %+v", p)
	}
	if p.Tags == nil || len(p.Tags) != 0 {
		t.Errorf("tags = %#v, want {}", p.Tags)
	}
	if p.LastSeenMs == nil || *p.LastSeenMs != 1500 || p.Self == nil || *p.Self {
		t.Errorf("primary last_seen_ms/self = %v/%v", p.LastSeenMs, p.Self)
	}
	if self.Self == nil || !*self.Self || *self.LastSeenMs != 0 || self.LagBytes != 0x800 || self.LagSeconds != 0.5 || !self.Streaming {
		t.Errorf("self = %+v", self)
	}
	// A suspect member keeps its role but is not healthy.
	if sus.Role != "replica" || sus.State != "suspect" || sus.Healthy || sus.Tags["nodetype"] != "analytics" {
		t.Errorf("suspect = %+v", sus)
	}
}

func TestClusterStatusDoesNotTouchSource(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	ms := a.src.members
	before := []int{ms[0].State.NodeID, ms[1].State.NodeID, ms[2].State.NodeID}
	slices.Reverse(ms)
	a.do("GET", "/api/v1/cluster/status")
	after := []int{ms[0].State.NodeID, ms[1].State.NodeID, ms[2].State.NodeID}
	slices.Reverse(before)
	if !slices.Equal(before, after) {
		t.Errorf("source slice reordered: %v -> %v", before, after)
	}
}

func TestClusterStatusRoles(t *testing.T) {
	a := newTestAPI(t, 1, primaryHealth())
	a.src.set(func(f *fakeSource) {
		f.members[1].State.Role = "" // not yet known
		f.members[2].Liveness = mesh.Dead
		f.members[2].LastSeen = time.Time{}
		f.members[2].State.LagSeconds = nan()
	})
	st := decodeData[testStatus](t, envelopeOf(t, a.do("GET", "/api/v1/cluster/status")))
	if st.Nodes[1].Role != "unknown" {
		t.Errorf("empty role reported as %q", st.Nodes[1].Role)
	}
	if st.Nodes[2].State != "dead" || st.Nodes[2].Healthy || *st.Nodes[2].LastSeenMs != -1 || st.Nodes[2].LagSeconds != 0 {
		t.Errorf("dead node = %+v", st.Nodes[2])
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestMultiplePrimaries(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(ms []mesh.Member)
		wantPrimary int
		wantWarning string
	}{
		{"newer timeline wins", func(ms []mesh.Member) {
			ms[2].State.Role, ms[2].State.Timeline = mesh.RolePrimary, 3
		}, 3, "multiple nodes claim primary: 1, 3"},
		{"same timeline, higher LSN wins", func(ms []mesh.Member) {
			ms[2].State.Role, ms[2].State.LSN = mesh.RolePrimary, 0x4_0000_0000
		}, 3, "multiple nodes claim primary: 1, 3"},
		{"full tie keeps lowest id", func(ms []mesh.Member) {
			ms[1].State.Role, ms[1].State.LSN = mesh.RolePrimary, ms[0].State.LSN
		}, 1, "multiple nodes claim primary: 1, 2"},
		{"dead claimant ignored", func(ms []mesh.Member) {
			ms[2].State.Role, ms[2].State.Timeline, ms[2].Liveness = mesh.RolePrimary, 9, mesh.Dead
		}, 1, ""},
		{"only a suspect primary", func(ms []mesh.Member) {
			ms[0].Liveness = mesh.Suspect
		}, 0, ""},
	}
	for _, tt := range tests {
		a := newTestAPI(t, 2, replicaHealth())
		a.src.set(func(f *fakeSource) { tt.edit(f.members) })
		st := decodeData[testStatus](t, envelopeOf(t, a.do("GET", "/api/v1/cluster/status")))
		if st.PrimaryNodeID != tt.wantPrimary {
			t.Errorf("%s: primary_node_id = %d, want %d", tt.name, st.PrimaryNodeID, tt.wantPrimary)
		}
		var want []string
		if tt.wantWarning != "" {
			want = []string{tt.wantWarning}
		}
		if len(st.Warnings) != len(want) || (len(want) == 1 && st.Warnings[0] != want[0]) {
			t.Errorf("%s: warnings = %q, want %q", tt.name, st.Warnings, want)
		}
	}
}

func TestClusterNode(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	rec := a.do("GET", "/api/v1/cluster/nodes/3")
	n := decodeData[testNode](t, envelopeOf(t, rec))
	if n.NodeID != 3 || n.Name != "pg3" || n.LSN != "3/0" || n.LagBytes != 0x1000 {
		t.Errorf("node 3 = %+v", n)
	}
}

type testHealth struct {
	Status        string   `json:"status"`
	PrimaryNodeID int      `json:"primary_node_id"`
	Reasons       []string `json:"reasons"`
	NodesTotal    int      `json:"nodes_total"`
	NodesAlive    int      `json:"nodes_alive"`
	NodesHealthy  int      `json:"nodes_healthy"`
}

func TestClusterHealth(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(ms []mesh.Member) []mesh.Member
		status  string
		code    int
		reasons []string
	}{
		{"healthy", nil, "healthy", 200, nil},
		{"left member ignored", func(ms []mesh.Member) []mesh.Member {
			ms[2].Liveness, ms[2].State.Healthy = mesh.Left, false
			return ms
		}, "healthy", 200, nil},
		{"replica suspect", func(ms []mesh.Member) []mesh.Member {
			ms[2].Liveness = mesh.Suspect
			return ms
		}, "degraded", 200, []string{"node 3 (pg3) is suspect"}},
		{"replica not streaming", func(ms []mesh.Member) []mesh.Member {
			ms[1].State.Streaming = false
			return ms
		}, "degraded", 200, []string{"node 2 (pg2) is not streaming"}},
		{"replica unhealthy and another dead", func(ms []mesh.Member) []mesh.Member {
			ms[1].State.Healthy = false
			ms[2].Liveness = mesh.Dead
			return ms
		}, "degraded", 200, []string{"node 2 (pg2) is not healthy", "node 3 (pg3) is dead"}},
		{"unknown role", func(ms []mesh.Member) []mesh.Member {
			ms[2].State.Role = mesh.RoleUnknown
			return ms
		}, "degraded", 200, []string{"node 3 (pg3) has no known role"}},
		{"primary dead", func(ms []mesh.Member) []mesh.Member {
			ms[0].Liveness = mesh.Dead
			return ms
		}, "failed", 503, []string{"no alive primary", "node 1 (pg1) is dead (last known as primary)"}},
		{"primary unhealthy", func(ms []mesh.Member) []mesh.Member {
			ms[0].State.Healthy = false
			return ms
		}, "failed", 503, []string{"primary node 1 (pg1) is not healthy"}},
		{"two primaries", func(ms []mesh.Member) []mesh.Member {
			ms[2].State.Role = mesh.RolePrimary
			return ms
		}, "failed", 503, []string{"multiple nodes claim primary: 1, 3"}},
		{"no members", func([]mesh.Member) []mesh.Member { return nil },
			"failed", 503, []string{"no alive primary", "no cluster members known"}},
	}
	for _, tt := range tests {
		a := newTestAPI(t, 2, replicaHealth())
		if tt.edit != nil {
			a.src.set(func(f *fakeSource) { f.members = tt.edit(f.members) })
		}
		rec := a.do("GET", "/api/v1/cluster/health")
		if rec.Code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.code)
		}
		env := envelopeOf(t, rec)
		h := decodeData[testHealth](t, env)
		if h.Status != tt.status {
			t.Errorf("%s: status %q, want %q", tt.name, h.Status, tt.status)
		}
		if h.Reasons == nil {
			t.Errorf("%s: reasons is null", tt.name)
		}
		if !slices.Equal(h.Reasons, tt.reasons) && !(len(h.Reasons) == 0 && len(tt.reasons) == 0) {
			t.Errorf("%s: reasons %q, want %q", tt.name, h.Reasons, tt.reasons)
		}
		if !strings.HasPrefix(*env.Message, "cluster is "+tt.status) {
			t.Errorf("%s: message %q", tt.name, *env.Message)
		}
	}
}

func TestClusterHealthCounts(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	a.src.set(func(f *fakeSource) { f.members[2].Liveness = mesh.Suspect })
	h := decodeData[testHealth](t, envelopeOf(t, a.do("GET", "/api/v1/cluster/health")))
	if h.NodesTotal != 3 || h.NodesAlive != 2 || h.NodesHealthy != 2 || h.PrimaryNodeID != 1 {
		t.Errorf("counts = %+v", h)
	}
}

func TestClusterStatusCache(t *testing.T) {
	vs := &versionedSource{version: 1}
	a := newTestAPI(t, 2, replicaHealth(), versioned(vs))
	first := a.do("GET", "/api/v1/cluster/status").Body.String()

	// The view changes but its version does not (yet): the cached body is
	// served within the TTL.
	a.src.set(func(f *fakeSource) { f.members[2].Liveness = mesh.Dead })
	a.clock.Advance(time.Millisecond)
	if got := a.do("GET", "/api/v1/cluster/status").Body.String(); got != first {
		t.Error("cache miss within TTL and same version")
	}
	// A new version is served at once.
	vs.mu.Lock()
	vs.version++
	vs.mu.Unlock()
	second := a.do("GET", "/api/v1/cluster/status").Body.String()
	if second == first || !strings.Contains(second, `"state":"dead"`) {
		t.Errorf("new version not rebuilt: %s", second)
	}
	// After the TTL the body is rebuilt even with the same version, so
	// ages and the timestamp move on.
	a.clock.Advance(statusCacheTTL)
	third := a.do("GET", "/api/v1/cluster/status")
	env := envelopeOf(t, third)
	if env.Timestamp != "2024-05-01T12:00:00.006Z" {
		t.Errorf("timestamp after TTL = %s", env.Timestamp)
	}
	// HEAD on a cached body has no body.
	if rec := a.do("HEAD", "/api/v1/cluster/status"); rec.Body.Len() != 0 || rec.Code != 200 {
		t.Errorf("HEAD cached: %d %q", rec.Code, rec.Body)
	}
}

func TestClusterStatusFingerprintCache(t *testing.T) {
	a := newTestAPI(t, 2, replicaHealth())
	get := func() string { return a.do("GET", "/api/v1/cluster/status").Body.String() }
	first := get()

	// A liveness change is seen at once.
	a.src.set(func(f *fakeSource) { f.members[2].Liveness = mesh.Suspect })
	second := get()
	if second == first || !strings.Contains(second, `"state":"suspect"`) {
		t.Fatalf("liveness change not seen: %s", second)
	}
	// A new state version is seen at once.
	a.src.set(func(f *fakeSource) { f.members[1].State.LagBytes = 12345; f.members[1].State.Version++ })
	third := get()
	if !strings.Contains(third, `"lag_bytes":12345`) {
		t.Fatalf("new state version not seen: %s", third)
	}
	// A change that bypasses versioning is served stale for at most the TTL.
	a.src.set(func(f *fakeSource) { f.members[1].State.LagBytes = 999 })
	if get() != third {
		t.Error("unversioned change served before the TTL expired")
	}
	a.clock.Advance(statusCacheTTL)
	if !strings.Contains(get(), `"lag_bytes":999`) {
		t.Error("stale body served after the TTL")
	}
}

func TestFingerprint(t *testing.T) {
	base := threeNodes(2)
	f0 := fingerprint(base)
	edits := map[string]func(ms []mesh.Member) []mesh.Member{
		"liveness":    func(ms []mesh.Member) []mesh.Member { ms[0].Liveness = mesh.Dead; return ms },
		"version":     func(ms []mesh.Member) []mesh.Member { ms[1].State.Version++; return ms },
		"started_at":  func(ms []mesh.Member) []mesh.Member { ms[1].State.StartedAt++; return ms },
		"last_seen":   func(ms []mesh.Member) []mesh.Member { ms[2].LastSeen = ms[2].LastSeen.Add(time.Millisecond); return ms },
		"self":        func(ms []mesh.Member) []mesh.Member { ms[1].Self = false; return ms },
		"member gone": func(ms []mesh.Member) []mesh.Member { return ms[:2] },
		"order":       func(ms []mesh.Member) []mesh.Member { ms[0], ms[1] = ms[1], ms[0]; return ms },
		"empty":       func([]mesh.Member) []mesh.Member { return nil },
	}
	for name, edit := range edits {
		if fingerprint(edit(threeNodes(2))) == f0 {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	if fingerprint(threeNodes(2)) != f0 {
		t.Error("fingerprint not deterministic")
	}
}

func TestFormatLSN(t *testing.T) {
	for _, l := range []uint64{0, 1, 0xF, 0x10, 0x1_0000_0000, 0x16_B374_D848, 0xFFFF_FFFF, 1<<64 - 1, 0x3_0000_1000} {
		if got, want := formatLSN(l), pg.LSN(l).String(); got != want {
			t.Errorf("formatLSN(%#x) = %q, want %q", l, got, want)
		}
	}
}

// TestClusterStatusConcurrent runs readers against a changing view (run
// with -race): every answer must be a complete, valid envelope.
func TestClusterStatusConcurrent(t *testing.T) {
	for _, opts := range [][]apiOption{nil, {versioned(&versionedSource{})}} {
		a := newTestAPI(t, 2, replicaHealth(), append(opts, quiet())...)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 200; i++ {
				a.src.set(func(f *fakeSource) { f.members[2].State.Version++ })
				a.clock.Advance(time.Millisecond)
			}
		}()
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					rec := a.do("GET", "/api/v1/cluster/status")
					if rec.Code != 200 || !json.Valid(rec.Body.Bytes()) {
						t.Errorf("status %d body %q", rec.Code, rec.Body)
						return
					}
				}
			}()
		}
		wg.Wait()
		<-done
	}
}
