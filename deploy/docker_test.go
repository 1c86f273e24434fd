package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ramd/ramd/configs"
)

// The Docker files cannot be run here (no Docker engine). These tests
// check what can be checked without one: docker-compose (Debian's 1.29,
// which validates a file against the Compose schema without an engine)
// accepts both files, every file they mount or build from exists, the
// Prometheus configuration passes promtool and scrapes the port ramd
// listens on by default, and Grafana's provisioning points at the
// dashboard. e2e/docker_test.go runs the entrypoint itself on the host.

type composeFile struct {
	Services map[string]struct {
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Networks    map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
}

func readCompose(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func TestComposeSchema(t *testing.T) {
	dc := tool(t, "docker-compose", "docker-compose")
	for _, f := range []string{"docker/docker-compose.yml", "docker/docker-compose-monitoring.yml"} {
		// config -q: parse, interpolate and validate against the schema.
		if out, err := exec.Command(dc, "-f", f, "config", "-q").CombinedOutput(); err != nil {
			t.Errorf("docker-compose rejects %s: %v\n%s", f, err, out)
		}
	}
}

// TestComposeReferences: every bind mount and build input exists, the
// nodes run the image's entrypoint with distinct ids and addresses, and
// HAProxy mounts the very haproxy.cfg e2e/haproxy_test.go runs.
func TestComposeReferences(t *testing.T) {
	main := readCompose(t, "docker/docker-compose.yml")
	mon := readCompose(t, "docker/docker-compose-monitoring.yml")
	for name, c := range map[string]composeFile{"docker-compose.yml": main, "docker-compose-monitoring.yml": mon} {
		for svc, s := range c.Services {
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				if !strings.HasPrefix(src, ".") {
					continue // a named volume
				}
				if _, err := os.Stat(filepath.Join("docker", src)); err != nil {
					t.Errorf("%s: service %s mounts %s: %v", name, svc, src, err)
				}
			}
			if s.Build != nil {
				df := filepath.Join("docker", s.Build.Context, s.Build.Dockerfile)
				if _, err := os.Stat(df); err != nil {
					t.Errorf("%s: service %s builds from %s: %v", name, svc, df, err)
				}
			}
		}
	}
	var nodes []string
	ids, addrs := map[string]bool{}, map[string]bool{}
	for svc, s := range main.Services {
		if s.Build == nil {
			continue
		}
		nodes = append(nodes, svc)
		id, addr := s.Environment["RAMD_NODE_ID"], s.Environment["RAMD_ADVERTISE_ADDR"]
		if ids[id] || addrs[addr] || id == "" || addr == "" {
			t.Errorf("service %s: node id %q / address %q missing or shared", svc, id, addr)
		}
		ids[id], addrs[addr] = true, true
		if got := s.Networks["ramd"].IPv4; got != addr {
			t.Errorf("service %s advertises %s but its network address is %s", svc, addr, got)
		}
		if n, _ := strconv.Atoi(s.Environment["RAMD_CLUSTER_EXPECT_NODES"]); n != 3 {
			t.Errorf("service %s: RAMD_CLUSTER_EXPECT_NODES=%q, want 3", svc, s.Environment["RAMD_CLUSTER_EXPECT_NODES"])
		}
		for _, seed := range strings.Split(s.Environment["RAMD_CLUSTER_JOIN"], ",") {
			host, _, _ := strings.Cut(seed, ":")
			if !strings.HasPrefix(seed, host+":"+strconv.Itoa(configs.Default().Mesh.BindPort)) {
				t.Errorf("service %s: seed %q is not at the default gossip port", svc, seed)
			}
		}
	}
	if len(nodes) != 3 {
		t.Errorf("docker-compose.yml has %d ramd nodes (%v), want 3", len(nodes), nodes)
	}
	if !slices.Contains(main.Services["haproxy"].Volumes, "../haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") {
		t.Error("the haproxy service does not run deploy/haproxy/haproxy.cfg")
	}
	// haproxy.cfg's server lines are the nodes' addresses, PostgreSQL and
	// API ports as the entrypoint configures them (defaults).
	cfg, err := os.ReadFile("haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	def := configs.Default()
	server := regexp.MustCompile(`(?m)^\s*server \S+ (\S+):(\d+) .*check port (\d+)`)
	found := 0
	for _, m := range server.FindAllStringSubmatch(string(cfg), -1) {
		found++
		if !addrs[m[1]] || m[2] != strconv.Itoa(def.PostgreSQL.Port) || m[3] != strconv.Itoa(def.API.Port) {
			t.Errorf("haproxy.cfg server %s:%s check port %s is not a compose node at the default ports", m[1], m[2], m[3])
		}
	}
	if found != 6 {
		t.Errorf("haproxy.cfg has %d server lines, want 6", found)
	}

	// Prometheus scrapes every node at the default metrics port.
	prom, err := os.ReadFile("docker/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	for addr := range addrs {
		target := fmt.Sprintf("%q", addr+":"+strconv.Itoa(def.Monitoring.PrometheusPort))
		if !strings.Contains(string(prom), target) {
			t.Errorf("docker/prometheus.yml does not scrape %s", target)
		}
	}
	// The example for real hosts scrapes the default port too.
	example, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	targets := regexp.MustCompile(`(?m)^\s*- targets: \["[^:"]+:(\d+)"\]`).FindAllStringSubmatch(string(example), -1)
	if len(targets) != 3 {
		t.Errorf("prometheus/prometheus.yml has %d targets, want 3", len(targets))
	}
	for _, m := range targets {
		if m[1] != strconv.Itoa(def.Monitoring.PrometheusPort) {
			t.Errorf("prometheus/prometheus.yml scrapes port %s; ramd's metrics port is %d by default", m[1], def.Monitoring.PrometheusPort)
		}
	}
	// Grafana: the provider's path is where the dashboard is mounted, and
	// the dashboard resolves its data source through a variable (file
	// provisioning does not fill in __inputs).
	prov, err := os.ReadFile("docker/grafana/provisioning/dashboards/ramd.yml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(prov, &p); err != nil || len(p.Providers) != 1 {
		t.Fatalf("dashboard provisioning: %v (%d providers)", err, len(p.Providers))
	}
	mounted := false
	for _, v := range mon.Services["grafana"].Volumes {
		if strings.HasPrefix(v, "../grafana/ramd-dashboard.json:"+p.Providers[0].Options.Path+"/") {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("the dashboard is not mounted under the provider's path %s", p.Providers[0].Options.Path)
	}
	dash, err := os.ReadFile("grafana/ramd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"name": "DS_PROMETHEUS",\s*"type": "datasource"`).Match(dash) {
		t.Error("the dashboard has no DS_PROMETHEUS data source variable: provisioned, its panels would have no data source")
	}
}

func TestDockerPrometheusConfig(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	// Laid out as the monitoring compose file mounts them.
	dir := t.TempDir()
	for src, dst := range map[string]string{"docker/prometheus.yml": "prometheus.yml", "prometheus/ramd-alerts.yml": "ramd-alerts.yml"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config docker/prometheus.yml: %v\n%s", err, out)
	}
}

// TestDockerfile: what the Dockerfile copies exists and the entrypoint it
// names is the one it installs; the entrypoint is valid POSIX sh.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !strings.Contains(df, "COPY deploy/docker/entrypoint.sh /usr/local/bin/ramd-entrypoint") ||
		!strings.Contains(df, `ENTRYPOINT ["/usr/local/bin/ramd-entrypoint"]`) {
		t.Error("the Dockerfile does not install and run deploy/docker/entrypoint.sh")
	}
	for _, m := range regexp.MustCompile(`(?m)^COPY (deploy/\S+)`).FindAllStringSubmatch(df, -1) {
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("Dockerfile copies %s: %v", m[1], err)
		}
	}
	for _, pkg := range []string{"./cmd/ramd", "./cmd/ramctl"} {
		if !strings.Contains(df, pkg) {
			t.Errorf("the Dockerfile does not build %s", pkg)
		}
	}
	if !strings.Contains(df, "postgresql-15") {
		t.Error("the Dockerfile does not install PostgreSQL 15")
	}
	if out, err := exec.Command("sh", "-n", "docker/entrypoint.sh").CombinedOutput(); err != nil {
		t.Errorf("sh -n docker/entrypoint.sh: %v\n%s", err, out)
	}
}
