package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const regenerate = "make docs (or: go run ./configs/cmd/gendoc -o docs/configuration.md)"

// TestConfigurationDocUpToDate fails when docs/configuration.md is not
// exactly what the generator writes from configs/types.go today: a field
// added, renamed or re-documented without regenerating the reference.
func TestConfigurationDocUpToDate(t *testing.T) {
	src, err := os.ReadFile("../../types.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatalf("docs/configuration.md: %v; create it with %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		line := 0
		for line < len(gl) && line < len(wl) && gl[line] == wl[line] {
			line++
		}
		t.Fatalf("docs/configuration.md is stale (first difference at line %d); regenerate it with %s", line+1, regenerate)
	}
}

// TestGenerateDocumentsEveryKey checks the output itself: every key of
// every section has its heading and environment variable, defaults come
// from configs.Default, and the Go names of fields do not leak into the
// text.
func TestGenerateDocumentsEveryKey(t *testing.T) {
	src, err := os.ReadFile("../../types.go")
	if err != nil {
		t.Fatal(err)
	}
	out, err := generate(src)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(out)
	for _, want := range []string{
		"## [cluster]", "## [failover]", "## [backup]",
		"- `node_id`: integer; default none (**required**); `RAMD_CLUSTER_NODE_ID`",
		"- `probe_interval`: duration; default `\"250ms\"`; `RAMD_MESH_PROBE_INTERVAL`",
		"- `hba_networks`: list of strings; default `[\"samenet\"]`; `RAMD_POSTGRESQL_HBA_NETWORKS`",
		"- `public_health_checks`: boolean; default `true`",
		"- `state_directory`: string; default derived",
		"- `maximum_lag_on_failover`: integer; default `1048576`",
		"`primary_host`, `primary_port` and `replica_hosts` come from",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("generated reference lacks %q", want)
		}
	}
	for _, goName := range []string{"NodeID ", "ProbeInterval", "ClusterConfig", "LeaseTTL "} {
		if strings.Contains(doc, goName) {
			t.Errorf("generated reference mentions the Go name %q", goName)
		}
	}
}

// TestGenerateRejectsUndocumentedField: a field without a comment (and
// not continuing a documented group) is an error naming the key.
func TestGenerateRejectsUndocumentedField(t *testing.T) {
	src := []byte(`package configs
type Config struct {
	Cluster ClusterConfig ` + "`toml:\"cluster\"`" + `
}
// ClusterConfig is a section.
type ClusterConfig struct {
	NodeID int ` + "`toml:\"node_id\"`" + `
}
`)
	_, err := generate(src)
	if err == nil || !strings.Contains(err.Error(), "[cluster] node_id has no doc comment") {
		t.Fatalf("got %v, want an error naming [cluster] node_id", err)
	}
}
