package api

import (
	"reflect"
	"testing"
	"time"

	"github.com/ramd/ramd/mesh"
	"github.com/ramd/ramd/pg"
)

func TestLocalRole(t *testing.T) {
	tests := []struct {
		h    pg.Health
		want mesh.Role
	}{
		{primaryHealth(), mesh.RolePrimary},
		{replicaHealth(), mesh.RoleReplica},
		{notStreamingHealth(), mesh.RoleReplica},
		{pg.Health{Running: true, InRecovery: true}, mesh.RoleReplica},
		{pg.Health{Running: true}, mesh.RoleUnknown},
		{pg.Health{InRecovery: true}, mesh.RoleUnknown},
		{downHealth(), mesh.RoleUnknown},
	}
	for i, tt := range tests {
		if got := localRole(tt.h); got != tt.want {
			t.Errorf("%d: localRole = %q, want %q", i, got, tt.want)
		}
	}
}

func TestNodeInfo(t *testing.T) {
	type info struct {
		ID                int               `json:"id"`
		NodeID            int               `json:"node_id"`
		Name              string            `json:"name"`
		Cluster           string            `json:"cluster"`
		ClusterName       string            `json:"cluster_name"`
		Version           string            `json:"version"`
		Role              string            `json:"role"`
		PostgreSQLVersion string            `json:"postgresql_version"`
		DataDirectory     string            `json:"data_directory"`
		UptimeSeconds     float64           `json:"uptime_seconds"`
		StartedAt         time.Time         `json:"started_at"`
		APIURL            string            `json:"api_url"`
		MeshAddr          string            `json:"mesh_addr"`
		PGHost            string            `json:"pg_host"`
		PGPort            int               `json:"pg_port"`
		Tags              map[string]string `json:"tags"`
	}
	for _, tt := range []struct {
		h    pg.Health
		role string
	}{{primaryHealth(), "primary"}, {replicaHealth(), "replica"}, {downHealth(), "unknown"}} {
		a := newTestAPI(t, 2, tt.h)
		got := decodeData[info](t, envelopeOf(t, a.do("GET", "/api/v1/node/info")))
		if got.Role != tt.role {
			t.Errorf("role = %q, want %q", got.Role, tt.role)
		}
		want := info{ID: 2, NodeID: 2, Name: "pg2", Cluster: "demo", ClusterName: "demo", Version: "0.1.0", Role: tt.role, PostgreSQLVersion: tt.h.Version,
			DataDirectory: "/var/lib/ramd/data", UptimeSeconds: 90, StartedAt: testNow.Add(-90 * time.Second),
			APIURL: "http://10.0.0.2:8080", MeshAddr: "10.0.0.2:7946", PGHost: "10.0.0.2", PGPort: 5432}
		if got.Tags == nil {
			t.Error("tags is null")
		}
		got.Tags = nil
		if !got.StartedAt.Equal(want.StartedAt) {
			t.Errorf("started_at = %v", got.StartedAt)
		}
		got.StartedAt = want.StartedAt
		if !reflect.DeepEqual(got, want) {
			t.Errorf("node info = %+v\nwant %+v", got, want)
		}
	}
}

type testNodeHealth struct {
	Healthy bool   `json:"healthy"`
	Role    string `json:"role"`
	Checks  []struct {
		Name   string `json:"name"`
		Pass   bool   `json:"pass"`
		Detail string `json:"detail"`
	} `json:"checks"`
	CheckAgeMs     int64   `json:"check_age_ms"`
	Running        bool    `json:"running"`
	CurrentLSN     string  `json:"current_lsn"`
	ReplayLSN      string  `json:"replay_lsn"`
	ReceiverStatus string  `json:"receiver_status"`
	LagSeconds     float64 `json:"lag_seconds"`
	SystemID       string  `json:"system_id"`
	Standbys       []pg.Standby
	Error          string `json:"error"`
}

func TestNodeHealth(t *testing.T) {
	tests := []struct {
		name    string
		h       pg.Health
		code    int
		role    string
		checks  string // name:pass list
		message string
	}{
		{"primary", primaryHealth(), 200, "primary", "running:true accepting:true role:true", ""},
		{"replica", replicaHealth(), 200, "replica", "running:true accepting:true role:true streaming:true", ""},
		{"replica not streaming", notStreamingHealth(), 503, "replica",
			"running:true accepting:true role:true streaming:false", "node is not healthy: failing checks: streaming"},
		{"down", downHealth(), 503, "unknown", "running:false accepting:false role:false",
			"node is not healthy: failing checks: running, accepting, role"},
	}
	for _, tt := range tests {
		a := newTestAPI(t, 1, tt.h)
		rec := a.do("GET", "/api/v1/node/health")
		if rec.Code != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.code)
		}
		env := envelopeOf(t, rec)
		got := decodeData[testNodeHealth](t, env)
		if got.Healthy != (tt.code == 200) || got.Role != tt.role {
			t.Errorf("%s: healthy=%v role=%q", tt.name, got.Healthy, got.Role)
		}
		var cs string
		for i, c := range got.Checks {
			if i > 0 {
				cs += " "
			}
			cs += c.Name + ":" + map[bool]string{true: "true", false: "false"}[c.Pass]
			if c.Detail == "" {
				t.Errorf("%s: check %s has no detail", tt.name, c.Name)
			}
		}
		if cs != tt.checks {
			t.Errorf("%s: checks %q, want %q", tt.name, cs, tt.checks)
		}
		if *env.Message != tt.message {
			t.Errorf("%s: message %q, want %q", tt.name, *env.Message, tt.message)
		}
		if string(env.Data) == "null" {
			t.Errorf("%s: 503 must still carry data", tt.name)
		}
	}

	a := newTestAPI(t, 1, primaryHealth())
	got := decodeData[testNodeHealth](t, envelopeOf(t, a.do("GET", "/api/v1/node/health")))
	if got.CheckAgeMs != 200 || got.CurrentLSN != "3/1000" || got.SystemID != "7268616322854375442" || len(got.Standbys) != 2 {
		t.Errorf("detail = %+v", got)
	}
	a = newTestAPI(t, 1, downHealth())
	got = decodeData[testNodeHealth](t, envelopeOf(t, a.do("GET", "/api/v1/node/health")))
	if got.Error != "connection refused" || got.Checks[0].Detail != "PostgreSQL is not running: connection refused" {
		t.Errorf("error detail = %q / %q", got.Error, got.Checks[0].Detail)
	}
	// Never checked yet.
	a = newTestAPI(t, 1, pg.Health{})
	got = decodeData[testNodeHealth](t, envelopeOf(t, a.do("GET", "/api/v1/node/health")))
	if got.CheckAgeMs != -1 {
		t.Errorf("check_age_ms before any check = %d, want -1", got.CheckAgeMs)
	}
}

func TestNonFiniteFloatsDoNotBreakAnswers(t *testing.T) {
	h := replicaHealth()
	h.LagSeconds = nan()
	h.Standbys = []pg.Standby{{ApplicationName: "x", ReplayLagSeconds: nan()}}
	a := newTestAPI(t, 2, h)
	for _, path := range apiRoutes {
		if rec := a.do("GET", path); rec.Code >= 500 {
			t.Errorf("GET %s = %d: %s", path, rec.Code, rec.Body)
		}
	}
}
