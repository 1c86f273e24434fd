package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// runbook is the deployment section of docs/operations.md, cut into the
// pieces TestDeployRunbook runs.
type runbook struct {
	configs  map[string]string // "db1": the full file; "db2", "db3": changed lines
	commands []string          // the "$ " lines of the console blocks, in order
}

var fence = regexp.MustCompile("(?s)```(\\w+)([^\\n]*)\\n(.*?)```")

func readRunbook(t *testing.T) runbook {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## Deploy a three-node cluster on three hosts\n"
	_, sec, ok := strings.Cut(string(b), heading)
	if !ok {
		t.Fatalf("docs/operations.md has no section %q", strings.TrimSpace(heading))
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	rb := runbook{configs: map[string]string{}}
	for _, m := range fence.FindAllStringSubmatch(sec, -1) {
		lang, info, body := m[1], strings.TrimSpace(m[2]), m[3]
		switch lang {
		case "toml":
			rb.configs[info] = body
		case "console":
			for _, l := range strings.Split(body, "\n") {
				if c, ok := strings.CutPrefix(strings.TrimSpace(l), "$ "); ok {
					rb.commands = append(rb.commands, c)
				}
			}
		case "sh", "text":
			// Host setup (packages, make install, systemctl) is not run;
			// text is example output.
		default:
			t.Fatalf("docs/operations.md: a ```%s block in the deployment runbook; the test knows toml, console, sh and text", lang)
		}
	}
	for _, host := range []string{"db1", "db2", "db3"} {
		if rb.configs[host] == "" {
			t.Fatalf("docs/operations.md: no ```toml %s block", host)
		}
	}
	if len(rb.commands) < 4 {
		t.Fatalf("docs/operations.md: only %d console commands in the runbook", len(rb.commands))
	}
	return rb
}

var (
	tomlSection = regexp.MustCompile(`^\[([^\]]+)\]\s*$`)
	tomlKey     = regexp.MustCompile(`^([A-Za-z0-9_]+)\s*=`)
)

// overrideLines applies "the same file with these lines changed": every
// key line of over replaces the line with the same key in the same
// section of base. A line of over that matches nothing is an error, so
// the doc cannot ask for a change the test silently ignores.
func overrideLines(t *testing.T, host, base, over string) string {
	t.Helper()
	want := map[string]string{} // "section.key" -> line
	section := ""
	for _, l := range strings.Split(over, "\n") {
		l = strings.TrimSpace(l)
		if m := tomlSection.FindStringSubmatch(l); m != nil {
			section = m[1]
		} else if m := tomlKey.FindStringSubmatch(l); m != nil {
			want[section+"."+m[1]] = l
		}
	}
	var out []string
	section = ""
	for _, l := range strings.Split(base, "\n") {
		if m := tomlSection.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			section = m[1]
		} else if m := tomlKey.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			if repl, ok := want[section+"."+m[1]]; ok {
				l = repl
				delete(want, section+"."+m[1])
			}
		}
		out = append(out, l)
	}
	for k := range want {
		t.Fatalf("docs/operations.md: %s changes %s, which db1's file does not have", host, k)
	}
	return strings.Join(out, "\n")
}

// replaceAll is strings.ReplaceAll that fails the test when old does not
// occur: a rewrite that no longer matches the doc must not pass silently.
func replaceAll(t *testing.T, what, s, old, repl string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%s: %q not found; the runbook changed, update the test's loopback rewrite", what, old)
	}
	return strings.ReplaceAll(s, old, repl)
}

var hostAddr = regexp.MustCompile(`10\.0\.0\.(\d+)`)

// unitCommand returns the ExecStart command line and User of the shipped
// systemd unit.
func unitCommand(t *testing.T) ([]string, string) {
	t.Helper()
	b, err := os.ReadFile("../deploy/systemd/ramd.service")
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	var usr string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			argv = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(l, "User="); ok {
			usr = strings.TrimSpace(v)
		}
	}
	if len(argv) == 0 {
		t.Fatal("deploy/systemd/ramd.service has no ExecStart")
	}
	return argv, usr
}

// TestDeployRunbook runs the deployment runbook of docs/operations.md on
// loopback: the three configuration files its toml blocks give (addresses
// and ports rewritten, since all three nodes share 127.0.0.1), each daemon
// started with the systemd unit's ExecStart and User, then every command
// of its console blocks. See that section's "What is tested".
func TestDeployRunbook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rb := readRunbook(t)
	argv, unitUser := unitCommand(t)
	asRoot := os.Geteuid() == 0
	if !asRoot {
		unitUser = "" // run as ourselves, like the demo does
	} else {
		accessibleBinaries(t)
	}
	dir, err := os.MkdirTemp("", "ramd-runbook-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ports, err := cluster.FreePorts(12)
	if err != nil {
		t.Fatal(err)
	}
	type loop struct{ pg, api, metrics, mesh int }
	lp := make([]loop, 3)
	var join []string
	for i := range lp {
		lp[i] = loop{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]}
		join = append(join, "127.0.0.1:"+strconv.Itoa(lp[i].mesh))
	}
	var nodes []*hostNode
	password, token := "", ""
	for i, host := range []string{"db1", "db2", "db3"} {
		text := rb.configs["db1"]
		if host != "db1" {
			text = overrideLines(t, host, text, rb.configs[host])
		}
		if m := regexp.MustCompile(`(?m)^password = "([^"]+)"`).FindStringSubmatch(text); m != nil {
			password = m[1]
		}
		if m := regexp.MustCompile(`(?m)^auth_token = "([^"]+)"`).FindStringSubmatch(text); m != nil {
			token = m[1]
		}
		nodeDir := filepath.Join(dir, host)
		etc, lib := filepath.Join(nodeDir, "etc"), filepath.Join(nodeDir, "lib")
		what := "docs/operations.md " + host + "'s file"
		text = replaceAll(t, what, text, `"10.0.0.0/24"`, `"127.0.0.1/32"`)
		text = replaceAll(t, what, text, "/var/lib/ramd/", lib+"/")
		text = hostAddr.ReplaceAllString(text, "127.0.0.1")
		for _, d := range []string{nodeDir, etc} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// StateDirectory=ramd: owned by the unit's user, mode 0700.
		if err := os.MkdirAll(lib, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(etc, "ramd.toml")
		if err := os.WriteFile(cfg, []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
		if unitUser != "" {
			// As the runbook says: root:postgres 0640.
			uid, gid := lookupUser(t, unitUser)
			if err := os.Chown(cfg, 0, int(gid)); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(lib, int(uid), int(gid)); err != nil {
				t.Fatal(err)
			}
		}
		cmd := append([]string(nil), argv...)
		if cmd[0] != "/usr/local/bin/ramd" {
			t.Fatalf("ExecStart runs %s, the test expects /usr/local/bin/ramd", cmd[0])
		}
		cmd[0] = ramdBin
		replaced := false
		for j, a := range cmd {
			if a == "/etc/ramd/ramd.toml" {
				cmd[j], replaced = cfg, true
			}
		}
		if !replaced {
			t.Fatalf("ExecStart %q does not name /etc/ramd/ramd.toml", strings.Join(argv, " "))
		}
		n := &hostNode{name: host, id: i + 1, apiURL: fmt.Sprintf("http://127.0.0.1:%d", lp[i].api), pgPort: lp[i].pg,
			dataDir: filepath.Join(lib, "data"), logPath: filepath.Join(nodeDir, "ramd.log")}
		env := []string{
			"RAMD_CLUSTER_JOIN=" + strings.Join(join, ","),
			"RAMD_MESH_BIND_PORT=" + strconv.Itoa(lp[i].mesh),
			"RAMD_POSTGRESQL_PORT=" + strconv.Itoa(lp[i].pg),
			"RAMD_API_PORT=" + strconv.Itoa(lp[i].api),
			"RAMD_MONITORING_PROMETHEUS_PORT=" + strconv.Itoa(lp[i].metrics),
		}
		startHostNode(t, n, cmd, env, unitUser)
		nodes = append(nodes, n)
	}
	if password == "" || token == "" {
		t.Fatal("docs/operations.md: db1's file sets no [postgresql] password or no [api] auth_token")
	}
	started := time.Now()
	primary := waitHostCluster(t, ctx, nodes, token)
	t.Logf("cluster formed %.1fs after the third daemon started; primary %s", time.Since(started).Seconds(), primary.name)

	// The console blocks, addresses rewritten: API 10.0.0.N:8080 to node
	// N's API port, PostgreSQL's port=5432 to every node's port in order
	// (the hosts are 127.0.0.1 three times).
	var pgPorts []string
	for _, p := range lp {
		pgPorts = append(pgPorts, strconv.Itoa(p.pg))
	}
	exported := []string{withPath(filepath.Dir(ramctlBin))}
	ran := map[string]bool{}
	for _, line := range rb.commands {
		for i, p := range lp {
			line = strings.ReplaceAll(line, fmt.Sprintf("10.0.0.%d:8080", i+1), fmt.Sprintf("127.0.0.1:%d", p.api))
		}
		if strings.HasPrefix(line, "psql ") {
			line = replaceAll(t, "docs/operations.md psql command", line, "port=5432", "port="+strings.Join(pgPorts, ","))
		}
		line = hostAddr.ReplaceAllString(line, "127.0.0.1")
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			exported = append(exported, k+"="+strings.Trim(v, `'"`))
			continue
		}
		prog, _, _ := strings.Cut(line, " ")
		if prog != "ramctl" && prog != "psql" {
			t.Fatalf("docs/operations.md: console command %q runs %s; the runbook's console blocks may only run ramctl and psql (host setup goes in sh blocks)", line, prog)
		}
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Env = append(os.Environ(), exported...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docs/operations.md: %s: %v\n%s", line, err, out)
		}
		t.Logf("$ %s\n%s", line, out)
		ran[line] = true
		if strings.HasPrefix(line, "ramctl list") {
			roles := map[string]int{}
			for _, row := range strings.Split(string(out), "\n") {
				f := strings.Fields(row)
				if len(f) >= 5 && (f[2] == "primary" || f[2] == "replica") && f[3] == "alive" && f[4] == "yes" {
					roles[f[2]]++
				}
			}
			if roles["primary"] != 1 || roles["replica"] != 2 {
				t.Fatalf("ramctl list shows %d healthy alive primaries and %d replicas, the runbook says 1 and 2:\n%s", roles["primary"], roles["replica"], out)
			}
		}
	}
	for _, want := range []string{"ramctl list", "ramctl health", "psql "} {
		found := false
		for l := range ran {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("the runbook's console blocks do not run %q", want)
		}
	}
	// The row psql wrote through the primary reached both replicas.
	for _, n := range nodes {
		waitRow(t, ctx, n, password, "deploy_check", 1)
	}
}
