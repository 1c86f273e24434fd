package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClusterConfig: cluster-wide overrides act on every node without a
// restart where PostgreSQL allows it: synchronous_mode switched to quorum
// shows in the status with the replicas as synchronous standbys; a
// work_mem override reaches a replica's PostgreSQL by reload; a
// shared_buffers override waits in pending_restart until that node's
// PostgreSQL is restarted through the API.
func TestClusterConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, p := formedPrimary(t, ctx)
	waitReplicasStreaming(t, c, p)
	r := c.Nodes[0]
	if r == p {
		r = c.Nodes[1]
	}
	code, body := apiCall(t, c.Token, "PATCH", r.APIURL()+"/api/v1/cluster/config",
		`{"failover.synchronous_mode": "quorum", "postgresql.parameters.work_mem": "8MB", "postgresql.parameters.shared_buffers": "64MB"}`)
	if code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	var env struct {
		Data struct {
			PendingRestart []string `json:"pending_restart"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env.Data.PendingRestart, "shared_buffers") {
		t.Errorf("pending_restart on %s = %v, want shared_buffers", r.Name, env.Data.PendingRestart)
	}
	eventually(t, 30*time.Second, func() string {
		s, err := p.Status(ctx)
		if err != nil {
			return err.Error()
		}
		if s.SyncMode != "quorum" || len(s.SyncStandbys) != 2 {
			return fmt.Sprintf("synchronous_mode %q standbys %v", s.SyncMode, s.SyncStandbys)
		}
		return ""
	})
	code, body = apiCall(t, c.Token, "GET", r.APIURL()+"/api/v1/config", "")
	for _, want := range []string{`{"key":"cluster.node_id","value":`, `"source":"file"`, `"key":"failover.synchronous_mode","value":"quorum","source":"cluster"`, `"key":"failover.lease_ttl","value":"2s","source":"default"`, `"key":"postgresql.password","value":"<redacted>"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("GET /config lacks %s: %d %.600s", want, code, body)
		}
	}
	show := func(name string) string {
		var v string
		if err := connect(t, ctx, r).QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	eventually(t, 10*time.Second, func() string {
		if v := show("work_mem"); v != "8MB" {
			return "work_mem on " + r.Name + " is " + v
		}
		return ""
	})
	if code, body := apiCall(t, c.Token, "POST", r.APIURL()+"/api/v1/node/restart", ""); code != 200 {
		t.Fatalf("restart %s: %d %s", r.Name, code, body)
	}
	if v := show("shared_buffers"); v != "64MB" {
		t.Fatalf("shared_buffers on %s after the restart: %s", r.Name, v)
	}
	if code, body := apiCall(t, c.Token, "POST", p.APIURL()+"/api/v1/node/restart", ""); code != 409 {
		t.Fatalf("restart of the primary without allow_primary: %d %s", code, body)
	}
	// Reload: log_level applies at once, a monitoring change waits for a
	// daemon restart, and a broken file changes nothing.
	b, err := os.ReadFile(r.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `log_level = "debug"`, `log_level = "info"`, 1)
	edited = strings.Replace(edited, "prometheus_enabled = true", "prometheus_enabled = false", 1)
	if edited == string(b) {
		t.Fatal("the test could not edit the config file")
	}
	if err := os.WriteFile(r.ConfigPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = apiCall(t, c.Token, "POST", r.APIURL()+"/api/v1/node/reload", "")
	if code != 200 || !strings.Contains(body, `"applied":["cluster.log_level"]`) || !strings.Contains(body, "monitoring.prometheus_enabled") {
		t.Fatalf("reload: %d %s", code, body)
	}
	if err := os.WriteFile(r.ConfigPath, []byte(edited+"\n[bogus]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := apiCall(t, c.Token, "POST", r.APIURL()+"/api/v1/node/reload", ""); code != 400 || !strings.Contains(body, "bogus") {
		t.Fatalf("reload of a broken file: %d %s", code, body)
	}
	// Writes go on in quorum mode.
	if _, err := connect(t, ctx, p).Exec(ctx, "CREATE TABLE e2e_cfg (id int)"); err != nil {
		t.Fatal(err)
	}
}
