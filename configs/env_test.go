package configs

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

const envBase = `
[cluster]
node_id = 1
data_directory = "/srv/pg/data"
[cluster.tags]
zone = "a"
[postgresql]
port = 5432
[postgresql.parameters]
shared_buffers = "1GB"
`

func TestEnvGeneralForm(t *testing.T) {
	c := mustParse(t, envBase,
		"PATH=/usr/bin",
		"RAMD_POSTGRESQL_PORT=5433",
		"RAMD_MESH_BIND_PORT=8000",
		"RAMD_MESH_PROBE_INTERVAL=500ms",
		"RAMD_MONITORING_PROMETHEUS_ENABLED=off",
		"RAMD_API_SSL_ENABLED=false",
		"RAMD_CLUSTER_JOIN=a:1, b:2,",
		"RAMD_CLUSTER_TAGS=nofailover=true, rack = r1",
		`RAMD_POSTGRESQL_PARAMETERS=work_mem=64MB,shared_preload_libraries=pg_stat_statements\,auto_explain,search_path=`,
		"RAMD_POSTGRESQL_PASSWORD=from=env",
		"RAMD_SECURITY_BLOCKED_IPS=10.0.0.1",
		"RAMD_MESH_gossip_nodes=5", // the key part is case-insensitive
	)
	if c.PostgreSQL.Port != 5433 || c.Mesh.BindPort != 8000 || c.Mesh.AdvertisePort != 8000 {
		t.Errorf("ports: pg %d mesh %d advertise %d", c.PostgreSQL.Port, c.Mesh.BindPort, c.Mesh.AdvertisePort)
	}
	if c.Mesh.ProbeInterval.Duration != 500*time.Millisecond {
		t.Errorf("probe_interval = %v", c.Mesh.ProbeInterval)
	}
	if c.Monitoring.PrometheusEnabled {
		t.Error("prometheus_enabled still true")
	}
	if want := []string{"a:1", "b:2"}; !slices.Equal(c.Cluster.Join, want) {
		t.Errorf("join = %q, want %q", c.Cluster.Join, want)
	}
	if want := map[string]string{"zone": "a", "nofailover": "true", "rack": "r1"}; !maps.Equal(c.Cluster.Tags, want) {
		t.Errorf("tags = %v, want %v (merged with the file)", c.Cluster.Tags, want)
	}
	want := Parameters{"shared_buffers": "1GB", "work_mem": "64MB",
		"shared_preload_libraries": "pg_stat_statements,auto_explain", "search_path": ""}
	if !maps.Equal(c.PostgreSQL.Parameters, want) {
		t.Errorf("parameters = %v, want %v", c.PostgreSQL.Parameters, want)
	}
	if c.PostgreSQL.Password != "from=env" || c.PostgreSQL.ReplicationPassword != "from=env" {
		t.Errorf("password %q replication %q", c.PostgreSQL.Password, c.PostgreSQL.ReplicationPassword)
	}
	if !slices.Equal(c.Security.BlockedIPs, []string{"10.0.0.1"}) || c.Mesh.GossipNodes != 5 {
		t.Errorf("blocked_ips %q gossip_nodes %d", c.Security.BlockedIPs, c.Mesh.GossipNodes)
	}
}

func TestEnvShortcuts(t *testing.T) {
	c := mustParse(t, envBase,
		"RAMD_NODE_ID=7",
		"RAMD_CLUSTER_NAME=blue",
		"RAMD_API_PORT=9999",
		"RAMD_LOG_LEVEL=debug",
	)
	if c.Cluster.NodeID != 7 || c.Cluster.NodeName != "node7" || c.Cluster.ClusterName != "blue" ||
		c.API.Port != 9999 || c.Cluster.LogLevel != "debug" {
		t.Errorf("got %+v %+v", c.Cluster, c.API)
	}
	// The general forms of the same keys work too.
	c = mustParse(t, envBase, "RAMD_CLUSTER_NODE_ID=8", "RAMD_CLUSTER_CLUSTER_NAME=green", "RAMD_CLUSTER_LOG_LEVEL=warn")
	if c.Cluster.NodeID != 8 || c.Cluster.ClusterName != "green" || c.Cluster.LogLevel != "warn" {
		t.Errorf("got %+v", c.Cluster)
	}
	// Both forms with one value is fine; with two it is an error.
	mustParse(t, envBase, "RAMD_NODE_ID=3", "RAMD_CLUSTER_NODE_ID=3")
	msg := parseErr(t, envBase, "RAMD_NODE_ID=3", "RAMD_CLUSTER_NODE_ID=4")
	wantContains(t, msg, "RAMD_CLUSTER_NODE_ID", "RAMD_NODE_ID", "cluster.node_id")
}

func TestEnvEmptyListClears(t *testing.T) {
	c := mustParse(t, envBase+"[security]\nblocked_ips = [\"10.0.0.1\"]\n", "RAMD_SECURITY_BLOCKED_IPS=")
	if c.Security.BlockedIPs == nil || len(c.Security.BlockedIPs) != 0 {
		t.Errorf("blocked_ips = %#v, want empty", c.Security.BlockedIPs)
	}
}

func TestEnvLastAssignmentWins(t *testing.T) {
	c := mustParse(t, envBase, "RAMD_API_PORT=1000", "RAMD_API_PORT=2000")
	if c.API.Port != 2000 {
		t.Errorf("api.port = %d", c.API.Port)
	}
}

func TestEnvIgnored(t *testing.T) {
	c := mustParse(t, envBase,
		"RAMD_TOKEN=secret", // ramctl's
		"RAMD_FOO_BAR=1",
		"RAMD_=x",
		"RAMD_MESHY_PORT=1", // not the mesh section
		"ramd_api_port=1",   // lower case: not ours
		"RAMD_NOEQUALS",
		"XRAMD_API_PORT=1",
	)
	if c.API.Port != 8080 {
		t.Errorf("api.port = %d", c.API.Port)
	}
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"RAMD_MESH_PROBE_INTERVALL=1s"}, []string{"configs: RAMD_MESH_PROBE_INTERVALL:", `unknown key "mesh.probe_intervall"`, "RAMD_MESH_PROBE_INTERVAL?"}},
		{[]string{"RAMD_POSTGRESQL_NOPE=1"}, []string{"RAMD_POSTGRESQL_NOPE", `"postgresql.nope"`}},
		{[]string{"RAMD_MESH=1"}, []string{"RAMD_MESH", "no key"}},
		{[]string{"RAMD_API_=1"}, []string{"RAMD_API_", "no key"}},
		{[]string{"RAMD_API_PORT=abc"}, []string{"configs: RAMD_API_PORT:", `"abc" is not an integer`}},
		{[]string{"RAMD_API_PORT=99999999999999999999"}, []string{"RAMD_API_PORT", "not an integer"}},
		{[]string{"RAMD_MESH_PROBE_INTERVAL=5"}, []string{"RAMD_MESH_PROBE_INTERVAL", `"5ms" or "5s"`}},
		{[]string{"RAMD_API_SSL_ENABLED=maybe"}, []string{"RAMD_API_SSL_ENABLED", "not a boolean"}},
		{[]string{"RAMD_CLUSTER_TAGS=novalue"}, []string{"RAMD_CLUSTER_TAGS", "not key=value"}},
		{[]string{"RAMD_CLUSTER_TAGS==v"}, []string{"RAMD_CLUSTER_TAGS", "empty key"}},
		{[]string{"RAMD_POSTGRESQL_PARAMETERS=port=5"}, []string{"RAMD_POSTGRESQL_PARAMETERS", `"port"`, "[postgresql] port"}},
		{[]string{"RAMD_POSTGRESQL_PARAMETERS=Bad=5"}, []string{"RAMD_POSTGRESQL_PARAMETERS", "not a PostgreSQL parameter name"}},
		// Valid form, invalid value: caught by Validate, naming the key.
		{[]string{"RAMD_API_PORT=70000"}, []string{"configs: api.port: 70000 is out of range"}},
		// All problems at once.
		{[]string{"RAMD_API_PORT=x", "RAMD_MESH_X=1"}, []string{"RAMD_API_PORT", "RAMD_MESH_X"}},
	} {
		msg := parseErr(t, envBase, tc.env...)
		wantContains(t, msg, tc.want...)
	}
}

func TestSplitHelpers(t *testing.T) {
	for in, want := range map[string][]string{
		"":            {},
		" , ,":        {},
		"a":           {"a"},
		"a, b ,c":     {"a", "b", "c"},
		`a\,b,c`:      {"a,b", "c"},
		`a\\,b`:       {`a\`, "b"},
		`trailing\`:   {`trailing\`},
		"[::1]:7946,": {"[::1]:7946"},
	} {
		if got := splitList(in); !slices.Equal(got, want) {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
	pairs, err := splitPairs(`a=1, b = x=y ,c\=d=e,f=`)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"a", "1"}, {"b", "x=y"}, {"c=d", "e"}, {"f", ""}}
	if !slices.Equal(pairs, want) {
		t.Errorf("splitPairs = %q, want %q", pairs, want)
	}
}

// TestEnvCoversEverySchemaKey sets every key of the schema through the
// general form, so a field added to types.go with a type env.go cannot set
// fails here.
func TestEnvCoversEverySchemaKey(t *testing.T) {
	samples := map[string]string{
		"bool": "true", "int": "1", "string": "x", "[]string": "a,b",
		"map[string]string": "k=v", "configs.Duration": "1s", "configs.Parameters": "work_mem=1MB",
	}
	for _, sec := range keysOf(configType) {
		f, _ := fieldByKey(configType, sec)
		for i := range f.Type.NumField() {
			field := f.Type.Field(i)
			key := tomlKey(field)
			sample, ok := samples[field.Type.String()]
			if !ok {
				t.Errorf("%s.%s: no sample for type %s; teach env.go and this test", sec, key, field.Type)
				continue
			}
			c := Default()
			name := "RAMD_" + strings.ToUpper(sec) + "_" + strings.ToUpper(key)
			if err := applyEnv(c, []string{name + "=" + sample}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
