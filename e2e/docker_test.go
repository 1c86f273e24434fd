package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/ramd/ramd/internal/cluster"
)

const entrypoint = "../deploy/docker/entrypoint.sh"

// composeNodes returns the environment of each ramd service of
// deploy/docker/docker-compose.yml (the services built from the
// Dockerfile), by service name, with ${VAR:-default} interpolated as
// docker-compose does.
func composeNodes(t *testing.T) (names []string, envs map[string]map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../deploy/docker/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	interp := regexp.MustCompile(`\$\{(\w+):-([^}]*)\}`)
	envs = map[string]map[string]string{}
	for name, s := range f.Services {
		if s.Build == nil {
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interp.ReplaceAllStringFunc(v, func(m string) string {
				sm := interp.FindStringSubmatch(m)
				if v := os.Getenv(sm[1]); v != "" {
					return v
				}
				return sm[2]
			})
		}
		names = append(names, name)
		envs[name] = env
	}
	slices.Sort(names)
	if len(names) != 3 {
		t.Fatalf("docker-compose.yml has %d ramd services, want 3", len(names))
	}
	return names, envs
}

// TestDockerEntrypoint runs deploy/docker/entrypoint.sh directly on the
// host, once per node of docker-compose.yml, with that node's environment
// from the compose file: the node addresses (10.0.0.N, one container
// each) become 127.0.0.1 and, since the three share it, each gets its own
// ports, configuration path and data directory. The entrypoint writes each
// node's configuration and runs ramd as the container would; the three
// must form a cluster that takes a write. Then the entrypoint runs a
// command given as arguments (ramctl list) against the existing
// configuration without rewriting it, and refuses to start without
// RAMD_NODE_ID. What this does not cover: the image build, Docker
// networking and volumes, tini, HAProxy and the monitoring containers.
func TestDockerEntrypoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	names, envs := composeNodes(t)
	dir, err := os.MkdirTemp("", "ramd-entrypoint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(4 * len(names))
	if err != nil {
		t.Fatal(err)
	}
	meshOf := map[string]int{} // compose address -> loopback gossip port
	for i, name := range names {
		meshOf[envs[name]["RAMD_ADVERTISE_ADDR"]] = ports[4*i+3]
	}
	binDir := filepath.Dir(ramdBin)
	var nodes []*hostNode
	nodeEnv := map[string][]string{}
	for i, name := range names {
		env := envs[name]
		pg, api, metrics, mesh := ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]
		var join []string
		for _, seed := range strings.Split(env["RAMD_CLUSTER_JOIN"], ",") {
			host, _, _ := strings.Cut(seed, ":")
			p, ok := meshOf[host]
			if !ok {
				t.Fatalf("%s: seed %s is not a compose node", name, seed)
			}
			join = append(join, "127.0.0.1:"+strconv.Itoa(p))
		}
		var list []string
		for k, v := range env {
			switch k {
			case "RAMD_ADVERTISE_ADDR":
				v = "127.0.0.1"
			case "RAMD_CLUSTER_JOIN":
				v = strings.Join(join, ",")
			}
			list = append(list, k+"="+v)
		}
		nodeDir := filepath.Join(dir, name)
		list = append(list,
			withPath(binDir),
			"RAMD_CONFIG="+filepath.Join(nodeDir, "etc", "ramd.toml"),
			"RAMD_DATA_DIR="+filepath.Join(nodeDir, "lib", "data"),
			// The container listens on every address of its own
			// network namespace; here, loopback only.
			"RAMD_API_HOST=127.0.0.1",
			"RAMD_POSTGRESQL_PORT="+strconv.Itoa(pg),
			"RAMD_API_PORT="+strconv.Itoa(api),
			"RAMD_MONITORING_PROMETHEUS_PORT="+strconv.Itoa(metrics),
			"RAMD_MESH_BIND_PORT="+strconv.Itoa(mesh),
		)
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		id, _ := strconv.Atoi(env["RAMD_NODE_ID"])
		n := &hostNode{name: name, id: id, apiURL: fmt.Sprintf("http://127.0.0.1:%d", api), pgPort: pg,
			dataDir: filepath.Join(nodeDir, "lib", "data"), logPath: filepath.Join(nodeDir, "ramd.log")}
		startHostNode(t, n, []string{"sh", entrypoint}, list, "")
		nodes = append(nodes, n)
		nodeEnv[name] = list
	}
	token, password := envs[names[0]]["RAMD_API_AUTH_TOKEN"], envs[names[0]]["RAMD_POSTGRESQL_PASSWORD"]
	started := time.Now()
	primary := waitHostCluster(t, ctx, nodes, token)
	t.Logf("cluster formed %.1fs after the third entrypoint started; primary %s", time.Since(started).Seconds(), primary.name)

	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=3", primary.pgPort, password)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE entrypoint_check (id int PRIMARY KEY); INSERT INTO entrypoint_check VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for _, n := range nodes {
		waitRow(t, ctx, n, password, "entrypoint_check", 1)
	}

	// The written configuration: the node's id and address, nothing
	// else but the data directory (the rest comes from RAMD_*).
	cfgPath := filepath.Join(dir, names[0], "etc", "ramd.toml")
	before, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node_id = " + envs[names[0]]["RAMD_NODE_ID"], `bind_addr = "127.0.0.1"`, `host = "127.0.0.1"`} {
		if !strings.Contains(string(before), want) {
			t.Errorf("the entrypoint's configuration lacks %q:\n%s", want, before)
		}
	}
	// Arguments run instead of the daemon, with the same preparation;
	// the existing configuration is kept.
	cmd := exec.CommandContext(ctx, "sh", entrypoint, "ramctl", "--url", primary.apiURL, "list")
	cmd.Env = append(append(os.Environ(), nodeEnv[names[0]]...), "RAMD_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "primary") {
		t.Fatalf("entrypoint.sh ramctl list: %v\n%s", err, out)
	}
	after, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("running a command through the entrypoint rewrote %s", cfgPath)
	}
	// Without RAMD_NODE_ID and without a file: a clear refusal.
	cmd = exec.CommandContext(ctx, "sh", entrypoint)
	cmd.Env = append(os.Environ(), "RAMD_CONFIG="+filepath.Join(dir, "none", "ramd.toml"), "RAMD_NODE_ID=")
	out, _ = cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 64 || !strings.Contains(string(out), "RAMD_NODE_ID is not set") {
		t.Errorf("entrypoint without RAMD_NODE_ID: exit %d, want 64 and a message naming RAMD_NODE_ID:\n%s", code, out)
	}
}
