package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadWithSources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ramd.toml")
	data := "[cluster]\nnode_id = 2\nnode_name = \"n2\"\ndata_directory = \"" + filepath.Join(dir, "data") + "\"\n[postgresql]\npassword = \"secret-pw\"\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, src, err := LoadWithSources(path, []string{"RAMD_API_PORT=8181"})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"cluster.node_id":         SourceFile,
		"api.port":                SourceEnvironment,
		"failover.lease_ttl":      SourceDefault,
		"cluster.state_directory": SourceDerived,
		"postgresql.password":     SourceFile,
	} {
		if src[key] != want {
			t.Errorf("%s: source %q, want %q", key, src[key], want)
		}
	}
	for _, e := range cfg.Entries(src) {
		if e.Key == "postgresql.password" && e.Value != redacted {
			t.Errorf("password shown as %v", e.Value)
		}
	}
}

func TestWithOverrides(t *testing.T) {
	dir := t.TempDir()
	base, err := Parse(filepath.Join(dir, "ramd.toml"), []byte("[cluster]\nnode_id = 1\ndata_directory = \""+filepath.Join(dir, "data")+"\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := base.WithOverrides(map[string]string{
		"failover.synchronous_mode":        "quorum",
		"failover.maximum_lag_on_failover": "0",
		"failover.primary_start_timeout":   "20s",
		"postgresql.parameters.work_mem":   "64MB",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Failover.SynchronousMode != "quorum" || got.Failover.MaximumLagOnFailover != 0 || got.Failover.PrimaryStartTimeout.Duration.String() != "20s" || got.PostgreSQL.Parameters["work_mem"] != "64MB" {
		t.Fatalf("overrides not applied: %+v %v", got.Failover, got.PostgreSQL.Parameters)
	}
	if base.Failover.SynchronousMode != "off" {
		t.Fatal("WithOverrides changed its receiver")
	}
	for overrides, want := range map[string]string{
		"failover.lease_ttl=5s":               "lease arithmetic",
		"api.port=1":                          "can change at run time",
		"failover.synchronous_mode=sometimes": "must be off, quorum or strict",
		"failover.synchronous_node_count=x":   "failover.synchronous_node_count",
		"postgresql.parameters.port=5433":     "port",
	} {
		k, v, _ := strings.Cut(overrides, "=")
		_, err := base.WithOverrides(map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", overrides, err, want)
		}
	}
	if _, err := base.WithOverrides(map[string]string{"api.port": "1"}); !errors.Is(err, ErrNotDynamic) {
		t.Errorf("api.port: %v, want ErrNotDynamic", err)
	}
}

func TestChangedKeys(t *testing.T) {
	a := Default()
	b := a.Clone()
	b.PostgreSQL.Password = "new-secret"
	b.Cluster.LogLevel = "debug"
	got := ChangedKeys(a, b)
	if strings.Join(got, ",") != "cluster.log_level,postgresql.password" {
		t.Fatalf("ChangedKeys = %v", got)
	}
	if got := ChangedKeys(a, a.Clone()); len(got) != 0 {
		t.Fatalf("identical configs: %v", got)
	}
}
