package configs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	d := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"mesh.bind_addr", d.Mesh.BindAddr, "0.0.0.0"},
		{"mesh.bind_port", d.Mesh.BindPort, 7946},
		{"mesh.probe_interval", d.Mesh.ProbeInterval.Duration, 250 * time.Millisecond},
		{"mesh.probe_timeout", d.Mesh.ProbeTimeout.Duration, 200 * time.Millisecond},
		{"mesh.suspicion_mult", d.Mesh.SuspicionMult, 4},
		{"mesh.gossip_interval", d.Mesh.GossipInterval.Duration, 100 * time.Millisecond},
		{"mesh.gossip_nodes", d.Mesh.GossipNodes, 3},
		{"mesh.push_pull_interval", d.Mesh.PushPullInterval.Duration, 5 * time.Second},
		{"mesh.rejoin_interval", d.Mesh.RejoinInterval.Duration, 5 * time.Second},
		{"api.host", d.API.Host, "0.0.0.0"},
		{"api.port", d.API.Port, 8080},
		{"postgresql.host", d.PostgreSQL.Host, "127.0.0.1"},
		{"postgresql.port", d.PostgreSQL.Port, 5432},
		{"postgresql.user", d.PostgreSQL.User, "postgres"},
		{"postgresql.database", d.PostgreSQL.Database, "postgres"},
		{"postgresql.ssl_mode", d.PostgreSQL.SSLMode, "prefer"},
		{"postgresql.replication_user", d.PostgreSQL.ReplicationUser, "replicator"},
		{"postgresql.hba_networks", d.PostgreSQL.HBANetworks, []string{"samenet"}},
		{"postgresql.run_as_user", d.PostgreSQL.RunAsUser, "postgres"},
		{"postgresql.health_interval", d.PostgreSQL.HealthInterval.Duration, 500 * time.Millisecond},
		{"postgresql.connect_timeout", d.PostgreSQL.ConnectTimeout.Duration, 3 * time.Second},
		{"monitoring.prometheus_enabled", d.Monitoring.PrometheusEnabled, true},
		{"monitoring.prometheus_port", d.Monitoring.PrometheusPort, 9090},
		{"monitoring.metrics_interval", d.Monitoring.MetricsInterval.Duration, 15 * time.Second},
		{"cluster.cluster_name", d.Cluster.ClusterName, "ramd"},
		{"cluster.expect_nodes", d.Cluster.ExpectNodes, 1},
		{"cluster.log_level", d.Cluster.LogLevel, "info"},
		{"cluster.primary_port", d.Cluster.PrimaryPort, 5432},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.key, c.got, c.want)
		}
	}
	// Fresh values on every call: no shared, mutable defaults.
	d.PostgreSQL.HBANetworks[0] = "changed"
	if Default().PostgreSQL.HBANetworks[0] != "samenet" {
		t.Error("Default shares its slices between calls")
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct{ top, cluster, rest, want string }{
		{"", "", "[mesh]\nprobe_intervall = \"1s\"", `configs: ramd.toml: unknown key "mesh.probe_intervall" (did you mean "mesh.probe_interval"?)`},
		{"", "", "[meshh]\nbind_port = 1", `unknown key "meshh"`},
		{"", "", "[api]\nport = 1\nprot = 2", `unknown key "api.prot"`},
		{"", "", "[mesh]\nBind_Port = 7000", `unknown key "mesh.Bind_Port" (keys are case-sensitive; did you mean "mesh.bind_port"?)`},
		{"top_level = 1", "", "", `unknown key "top_level"`},
		{"", "node_idd = 2", "", `unknown key "cluster.node_idd" (did you mean "cluster.node_id"?)`},
		{"", "", "[cluster.tagz]\na = \"b\"", `unknown key "cluster.tagz"`},
		{"", "", "[Security]\nrate_limit = 1", `unknown key "Security" (keys are case-sensitive; did you mean "security"?)`},
	} {
		msg := parseErr(t, doc(tc.top, tc.cluster, tc.rest))
		wantContains(t, msg, tc.want)
	}
	// An unknown table is reported once, not once per key.
	msg := parseErr(t, doc("", "", "[foo]\na = 1\nb = 2\n[foo.bar]\nc = 3"))
	if n := strings.Count(msg, "unknown key"); n != 1 {
		t.Errorf("%d errors for one unknown table: %s", n, msg)
	}
	// Several unknown keys are all reported.
	msg = parseErr(t, doc("", "", "[mesh]\nx = 1\ny = 2"))
	wantContains(t, msg, `"mesh.x"`, `"mesh.y"`)
}

func TestSyntaxError(t *testing.T) {
	msg := parseErr(t, "[cluster]\nnode_id = 1\n\n[mesh]\nbind_port = = 3\n")
	wantContains(t, msg, "configs: ramd.toml: invalid TOML at line 5, column 13:")
	msg = parseErr(t, "[cluster]\nnode_id = 1\nnode_id = 2\n")
	wantContains(t, msg, "line 3", "already been defined")
	msg = parseErr(t, "[mesh\n")
	wantContains(t, msg, "configs: ramd.toml: invalid TOML at line")
}

func TestWrongType(t *testing.T) {
	for _, tc := range []struct{ top, cluster, rest, want string }{
		{"", "expect_nodes = \"one\"", "", `cluster.expect_nodes: expected an integer, got string "one"`},
		{"", "", "[mesh]\nbind_port = 1.5", `mesh.bind_port: expected an integer, got float 1.5`},
		{"", "", "[api]\nssl_enabled = \"yes\"", `api.ssl_enabled: expected a boolean`},
		{"", "", "[api]\nhost = 1", `api.host: expected a string, got integer 1`},
		{"", "join = \"a:1\"", "", `cluster.join: expected an array, got string`},
		{"", "join = [\"a:1\", 2]", "", `cluster.join[1]: expected a string, got integer 2`},
		{"", "", "[cluster.tags]\nzone = 1", `cluster.tags.zone: expected a string`},
		{"mesh = 1", "", "", `mesh: expected a table, got integer 1`},
		{"", "", "[[security]]\nrate_limit = 1", `security: expected a table, got an array of tables`},
	} {
		msg := parseErr(t, doc(tc.top, tc.cluster, tc.rest))
		wantContains(t, msg, "configs: ramd.toml: "+tc.want)
	}
	// Every mistyped key is reported, not only the first.
	msg := parseErr(t, doc("", "expect_nodes = \"3\"", "[api]\nport = \"80\""))
	wantContains(t, msg, "cluster.expect_nodes", "api.port")
}

func TestDerivedDefaults(t *testing.T) {
	c := mustParse(t, `
[cluster]
node_id = 7
data_directory = "/srv/pg/node7/data"
[mesh]
bind_port = 8000
[postgresql]
password = "s3cret"
`)
	for _, tc := range []struct{ key, got, want string }{
		{"cluster.node_name", c.Cluster.NodeName, "node7"},
		{"cluster.state_directory", c.Cluster.StateDirectory, "/srv/pg/node7/ramd-state-node7"},
		{"postgresql.socket_directory", c.PostgreSQL.SocketDirectory, "/srv/pg/node7/ramd-state-node7/run"},
		{"postgresql.replication_password", c.PostgreSQL.ReplicationPassword, "s3cret"},
		{"backup.directory", c.Backup.Directory, "/srv/pg/node7/ramd-state-node7/backups"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
	if c.Mesh.AdvertisePort != 8000 {
		t.Errorf("mesh.advertise_port = %d, want bind_port 8000", c.Mesh.AdvertisePort)
	}

	// Explicit values are kept.
	c = mustParse(t, `
[cluster]
node_id = 7
node_name = "db_a"
data_directory = "/srv/pg/data/"
state_directory = "/srv/ramd"
primary_host = "old-primary"
primary_port = 0
[mesh]
advertise_port = 9000
[postgresql]
password = "a"
replication_password = "b"
socket_directory = "/run/pg"
`)
	if c.Cluster.NodeName != "db_a" || c.Cluster.StateDirectory != "/srv/ramd" || c.PostgreSQL.SocketDirectory != "/run/pg" ||
		c.PostgreSQL.ReplicationPassword != "b" || c.Mesh.AdvertisePort != 9000 || c.Cluster.DataDirectory != "/srv/pg/data" {
		t.Errorf("explicit values changed: %+v %+v %+v", c.Cluster, c.Mesh, c.PostgreSQL)
	}
	if c.Cluster.PrimaryPort != 5432 {
		t.Errorf("primary_port = %d, want 5432 with primary_host set", c.Cluster.PrimaryPort)
	}

	// Nodes sharing a parent directory get distinct state directories.
	a := mustParse(t, "[cluster]\nnode_id = 1\ndata_directory = \"/srv/pg/data1\"\n")
	b := mustParse(t, "[cluster]\nnode_id = 2\ndata_directory = \"/srv/pg/data2\"\n")
	if a.Cluster.StateDirectory == b.Cluster.StateDirectory {
		t.Errorf("both nodes got state directory %s", a.Cluster.StateDirectory)
	}
}

func TestRelativePaths(t *testing.T) {
	src := `
[cluster]
node_id = 1
data_directory = "pg/data"
[api]
ssl_enabled = true
cert_file = "tls/cert.pem"
key_file = "/abs/key.pem"
[postgresql]
bin_directory = "../bin"
[security]
audit_log = "log/audit.jsonl"
`
	c, err := Parse("/etc/ramd/ramd.toml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"cluster.data_directory", c.Cluster.DataDirectory, "/etc/ramd/pg/data"},
		{"cluster.state_directory", c.Cluster.StateDirectory, "/etc/ramd/pg/ramd-state-node1"},
		{"postgresql.socket_directory", c.PostgreSQL.SocketDirectory, "/etc/ramd/pg/ramd-state-node1/run"},
		{"postgresql.bin_directory", c.PostgreSQL.BinDirectory, "/etc/bin"},
		{"api.cert_file", c.API.CertFile, "/etc/ramd/tls/cert.pem"},
		{"api.key_file", c.API.KeyFile, "/abs/key.pem"},
		{"security.audit_log", c.Security.AuditLog, "/etc/ramd/log/audit.jsonl"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}

	// Load with a relative file name resolves against the file's
	// directory, itself relative to the current directory.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "ramd.toml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	c, err = Load(filepath.Join("conf", "ramd.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "conf", "pg", "data"); c.Cluster.DataDirectory != want {
		t.Errorf("data_directory = %q, want %q", c.Cluster.DataDirectory, want)
	}
	// A name without a directory: the current directory.
	c, err = Parse("inline", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "pg", "data"); c.Cluster.DataDirectory != want {
		t.Errorf("data_directory = %q, want %q", c.Cluster.DataDirectory, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path, nil)
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
	}
	msg := err.Error()
	wantContains(t, msg, "configs: ", path, "does not exist")
	if strings.Contains(msg, "\n") {
		t.Errorf("multi-line error: %q", msg)
	}
}

func TestValidationErrorsFromParse(t *testing.T) {
	msg := parseErr(t, minimal+"[api]\nport = 70000\n[mesh]\ngossip_nodes = 0\n")
	wantContains(t, msg, "configs: api.port: 70000 is out of range 1-65535", "configs: mesh.gossip_nodes:")
	msg = parseErr(t, "[cluster]\ndata_directory = \"/d\"\n")
	wantContains(t, msg, "cluster.node_id")
}

// richConfig sets every section to non-default values, with strings that
// need quoting in TOML.
const richConfig = `
[cluster]
node_id = 3
node_name = "db_three"
cluster_name = "prod.eu-1"
join = ["10.0.0.1:7946", "[fd00::2]:7946", "db3.example:7946"]
expect_nodes = 3
data_directory = "/var/lib/postgresql/15/main"
state_directory = "/var/lib/ramd/state"
log_level = "debug"
primary_host = "legacy-primary"
primary_port = 6543
replica_hosts = ["r1:5432", "r2:5432"]
[cluster.tags]
nofailover = "true"
zone = "eu-west-1a"
"dotted.key" = "v"

[mesh]
bind_addr = "10.0.0.3"
bind_port = 7000
advertise_addr = "192.0.2.3"
advertise_port = 7001
encrypt_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
probe_interval = "1s"
probe_timeout = "400ms"
suspicion_mult = 6
gossip_interval = "100ms"
gossip_nodes = 4
push_pull_interval = "30s"
rejoin_interval = "1m30s"

[api]
host = "10.0.0.3"
port = 8443
advertise_url = "https://db3.example:8443"
ssl_enabled = true
cert_file = "/etc/ramd/tls/cert.pem"
key_file = "/etc/ramd/tls/key.pem"
auth_token = "tok\"en\\with'quotes"

[postgresql]
host = "10.0.0.3"
port = 5433
user = "admin"
password = "p@ss \"word\" \\ ünïcode"
database = "ops"
ssl_mode = "verify-full"
bin_directory = "/usr/lib/postgresql/15/bin"
replication_user = "repl"
replication_password = "other"
socket_directory = "/run/ramd"
hba_networks = ["10.0.0.0/24", "192.0.2.10", "samehost"]
run_as_user = "pg"
health_interval = "1s"
connect_timeout = "10s"
[postgresql.parameters]
shared_buffers = "4GB"
max_connections = 300
jit = false
random_page_cost = 1.1
"pg_stat_statements.track" = "all"
shared_preload_libraries = "pg_stat_statements,auto_explain"

[monitoring]
prometheus_enabled = false
prometheus_port = 9187
metrics_interval = "1m"

[security]
rate_limit = 50
max_connections = 1000
blocked_ips = ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"]
trusted_proxies = ["10.0.0.1", "10.1.0.0/16"]
audit_log = "/var/log/ramd/audit.log"
`

func TestEncodeRoundTrip(t *testing.T) {
	sources := map[string]string{"rich": richConfig, "minimal": minimal}
	for _, f := range []string{"ramd.toml", "examples/node1.toml", "examples/node2.toml", "examples/node3.toml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources[f] = string(data)
	}
	for name, src := range sources {
		c := mustParse(t, src)
		var buf bytes.Buffer
		if err := c.Encode(&buf); err != nil {
			t.Fatalf("%s: Encode: %v", name, err)
		}
		back, err := Parse("/etc/ramd/ramd.toml", buf.Bytes(), nil)
		if err != nil {
			t.Fatalf("%s: Parse(Encode()): %v\n%s", name, err, buf.String())
		}
		if !reflect.DeepEqual(c, back) {
			t.Errorf("%s: round trip changed the config\nbefore %+v\nafter  %+v\n%s", name, c, back, buf.String())
		}
	}
}

// TestExampleFiles loads the shipped examples.
func TestExampleFiles(t *testing.T) {
	c, err := Load("ramd.toml", nil)
	if err != nil {
		t.Fatalf("ramd.toml: %v", err)
	}
	// Apart from the required keys and the parameter examples, ramd.toml
	// holds exactly the defaults.
	want := Default()
	want.Cluster.NodeID = 1
	want.Cluster.DataDirectory = "/var/lib/ramd/data"
	want.Cluster.Join = []string{}
	want.Cluster.ReplicaHosts = []string{}
	want.Security.BlockedIPs = []string{}
	want.Security.TrustedProxies = []string{}
	want.PostgreSQL.Parameters = Parameters{"max_connections": "100", "shared_buffers": "128MB"}
	if err := want.FillDerived("/"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ramd.toml differs from the defaults\n got %+v\nwant %+v", c, want)
	}

	for n := 1; n <= 3; n++ {
		path := filepath.Join("examples", "node"+strconv.Itoa(n)+".toml")
		c, err := Load(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		dir := "/var/lib/ramd/node" + strconv.Itoa(n)
		if c.Cluster.NodeID != n || c.Cluster.ExpectNodes != 3 || len(c.Cluster.Join) != 3 ||
			c.PostgreSQL.Port != 5432+n || c.API.Port != 8080+n || c.Monitoring.PrometheusPort != 9090+n ||
			c.Mesh.BindPort != 7946+n || c.Mesh.BindAddr != "127.0.0.1" || c.Cluster.DataDirectory != dir+"/data" {
			t.Errorf("%s: unexpected values: %+v", path, c)
		}
		if c.MeshAdvertiseHost()+":"+strconv.Itoa(c.Mesh.AdvertisePort) != c.Cluster.Join[n-1] {
			t.Errorf("%s: own mesh address %s:%d is not join[%d] %s", path, c.MeshAdvertiseHost(), c.Mesh.AdvertisePort, n-1, c.Cluster.Join[n-1])
		}
	}
}

// TestExampleListsEveryKey checks that ramd.toml mentions every key of the
// schema in its section (commented out for derived defaults), so the
// example cannot fall behind types.go.
func TestExampleListsEveryKey(t *testing.T) {
	data, err := os.ReadFile("ramd.toml")
	if err != nil {
		t.Fatal(err)
	}
	header := regexp.MustCompile(`^(?:# )?\[([a-z_.]+)\]\s*$`)
	keyLine := regexp.MustCompile(`^(?:# )?([a-z_]+) = `)
	seen := make(map[string]bool)
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			section = m[1]
			seen[section] = true
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			seen[section+"."+m[1]] = true
		}
	}
	for _, sec := range keysOf(configType) {
		f, _ := fieldByKey(configType, sec)
		for _, k := range keysOf(f.Type) {
			if !seen[sec+"."+k] {
				t.Errorf("ramd.toml does not list %s.%s", sec, k)
			}
		}
	}
}

// TestExampleCommentedValues uncomments every commented key of ramd.toml
// (the derived defaults and the optional examples) and checks the derived
// values shown are the ones really derived.
func TestExampleCommentedValues(t *testing.T) {
	data, err := os.ReadFile("ramd.toml")
	if err != nil {
		t.Fatal(err)
	}
	orig := mustParse(t, string(data))
	uncommented := regexp.MustCompile(`(?m)^# ((?:[a-z_]+ = )|\[)`).ReplaceAllString(string(data), "$1")
	c := mustParse(t, uncommented)
	if len(c.Cluster.Tags) == 0 || len(c.PostgreSQL.Parameters) <= len(orig.PostgreSQL.Parameters) {
		t.Errorf("the commented examples were not uncommented: %v %v", c.Cluster.Tags, c.PostgreSQL.Parameters)
	}
	c.Cluster.Tags = orig.Cluster.Tags
	c.PostgreSQL.Parameters = orig.PostgreSQL.Parameters
	if !reflect.DeepEqual(c, orig) {
		t.Errorf("uncommented derived values differ\n got %+v\nwant %+v", c, orig)
	}
}
