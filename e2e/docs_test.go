package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// docStep is one runnable piece of docs/api.md: an HTTP example with its
// expected status, or a test directive (an HTML comment).
type docStep struct {
	status    int
	block     string
	directive string
}

var docPattern = regexp.MustCompile("(?s)```http (\\d{3})\\n(.*?)```|<!-- test: (.*?) -->")

func docSteps(t *testing.T, path string) []docStep {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []docStep
	for _, m := range docPattern.FindAllStringSubmatch(string(b), -1) {
		if m[3] != "" {
			steps = append(steps, docStep{directive: strings.TrimSpace(m[3])})
			continue
		}
		code, _ := strconv.Atoi(m[1])
		steps = append(steps, docStep{status: code, block: m[2]})
	}
	if len(steps) < 10 {
		t.Fatalf("%s has only %d runnable examples", path, len(steps))
	}
	return steps
}

// TestAPIDocExamples runs every example of docs/api.md, in order, against
// a 4-node cluster (node 4 spare) and checks each answer's status, so the
// documentation cannot drift from the API.
func TestAPIDocExamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	steps := docSteps(t, "../docs/api.md")
	c := launchWithSpare(t)
	node1, node4 := c.Nodes[0], c.Nodes[3]
	waitWritable(t, c, 60*time.Second, nil)
	vars := strings.NewReplacer(
		"$TOKEN", c.Token,
		"$READ_TOKEN", spareReadToken,
		"$NODE4_ADDR", node4.Addr,
		"$NODE4_PORT", strconv.Itoa(node4.MeshPort),
		"$IN_ONE_HOUR", time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	)
	for i, st := range steps {
		settle(t, ctx, c)
		if st.directive != "" {
			runDirective(t, ctx, c, st.directive)
			continue
		}
		method, path, headers, body := parseHTTPExample(t, vars.Replace(st.block))
		req, err := http.NewRequestWithContext(ctx, method, node1.APIURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("example %d (%s %s): %v", i+1, method, path, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != st.status {
			t.Fatalf("example %d (%s %s): status %d, the doc says %d: %s", i+1, method, path, resp.StatusCode, st.status, got)
		}
	}
	t.Logf("ran %d examples of docs/api.md", len(steps))
}

// runDirective carries out a doc's hidden test step: "stop node 4" or
// "wait backup NAME" (until the backup is done).
func runDirective(t *testing.T, ctx context.Context, c *cluster.Cluster, d string) {
	t.Helper()
	switch {
	case d == "stop node 4":
		if err := c.Nodes[3].Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	case strings.HasPrefix(d, "wait backup "):
		name := strings.TrimPrefix(d, "wait backup ")
		eventually(t, 60*time.Second, func() string {
			r, err := c.Nodes[0].Client().Get(ctx, "/api/v1/backup/list")
			if err != nil {
				return err.Error()
			}
			var l struct {
				Backups []struct {
					Name, Status, Error string
				} `json:"backups"`
			}
			if err := r.Decode(&l); err != nil {
				return err.Error()
			}
			for _, b := range l.Backups {
				if b.Name == name {
					if b.Status == "failed" {
						t.Fatalf("backup %s failed: %s", name, b.Error)
					}
					if b.Status == "done" {
						return ""
					}
					return "backup " + name + " is " + b.Status
				}
			}
			return "no backup " + name + " listed"
		})
	case strings.HasPrefix(d, "wait restore "):
		node := strings.TrimPrefix(d, "wait restore ")
		eventually(t, 90*time.Second, func() string {
			r, err := c.Nodes[0].Client().Get(ctx, "/api/v1/backup/restore?node_id="+node)
			if err != nil {
				return err.Error()
			}
			var ri struct{ Status, Phase, Error string }
			if err := r.Decode(&ri); err != nil {
				return err.Error()
			}
			switch ri.Status {
			case "failed":
				t.Fatalf("restore on node %s failed: %s", node, ri.Error)
			case "done":
				return ""
			}
			return fmt.Sprintf("restore on node %s: %s %s", node, ri.Status, ri.Phase)
		})
	default:
		t.Fatalf("unknown test directive %q in the docs", d)
	}
}

// parseHTTPExample reads "METHOD PATH", header lines, a blank line and
// the body.
func parseHTTPExample(t *testing.T, block string) (method, path string, headers map[string]string, body string) {
	t.Helper()
	head, body, _ := strings.Cut(block, "\n\n")
	lines := strings.Split(strings.TrimSpace(head), "\n")
	f := strings.Fields(lines[0])
	if len(f) != 2 {
		t.Fatalf("example request line %q", lines[0])
	}
	headers = map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("example header line %q", l)
		}
		headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if body = strings.TrimSpace(body); body != "" {
		headers["Content-Type"] = "application/json"
	}
	return f[0], f[1], headers, body
}

// settle waits until the cluster has a writable primary and every alive
// replica it lists streams (or is detached on purpose).
func settle(t *testing.T, ctx context.Context, c *cluster.Cluster) {
	t.Helper()
	p := waitWritable(t, c, 60*time.Second, nil)
	eventually(t, 60*time.Second, func() string {
		s, err := p.Status(ctx)
		if err != nil {
			return err.Error()
		}
		r, err := p.Client().Get(ctx, "/api/v1/replication/status")
		if err != nil {
			return err.Error()
		}
		var rs struct {
			Standbys []struct {
				NodeID   int  `json:"node_id"`
				Detached bool `json:"detached"`
			} `json:"standbys"`
		}
		if err := r.Decode(&rs); err != nil {
			return err.Error()
		}
		detached := map[int]bool{}
		for _, sb := range rs.Standbys {
			detached[sb.NodeID] = sb.Detached
		}
		for _, n := range s.Nodes {
			if n.State == "alive" && n.NodeID != s.PrimaryNodeID && !n.Streaming && !detached[n.NodeID] {
				return fmt.Sprintf("%s: role=%s streaming=%v", n.Name, n.Role, n.Streaming)
			}
		}
		return ""
	})
}

var envAssign = regexp.MustCompile(`^([A-Z_]+)='([^']*)' `)

var consolePattern = regexp.MustCompile("(?s)```console(?: exit=(\\d+))?\\n(.*?)```|<!-- test: (.*?) -->")

// TestRamctlDocExamples runs every command of docs/ramctl.md, in order,
// against a 4-node cluster (node 4 spare) and checks each exit code.
func TestRamctlDocExamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := os.ReadFile("../docs/ramctl.md")
	if err != nil {
		t.Fatal(err)
	}
	c := launchWithSpare(t)
	node1, node4 := c.Nodes[0], c.Nodes[3]
	waitWritable(t, c, 60*time.Second, nil)
	vars := strings.NewReplacer(
		"$NODE4_ADDR", node4.Addr,
		"$NODE4_PORT", strconv.Itoa(node4.MeshPort),
		"$IN_ONE_HOUR", time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	)
	ran := 0
	for _, m := range consolePattern.FindAllStringSubmatch(string(b), -1) {
		settle(t, ctx, c)
		if d := strings.TrimSpace(m[3]); d != "" {
			runDirective(t, ctx, c, d)
			continue
		}
		want := 0
		if m[1] != "" {
			want, _ = strconv.Atoi(m[1])
		}
		for _, line := range strings.Split(strings.TrimSpace(vars.Replace(m[2])), "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "$ ") {
				continue // output shown in the doc
			}
			// An optional VAR='value' before ramctl sets the environment.
			env := []string{"RAMCTL_URL=" + node1.APIURL(), "RAMD_TOKEN=" + c.Token}
			rest := strings.TrimPrefix(line, "$ ")
			if m := envAssign.FindStringSubmatch(rest); m != nil {
				env = append(env, m[1]+"="+m[2])
				rest = rest[len(m[0]):]
			}
			args, ok := strings.CutPrefix(rest, "ramctl ")
			if !ok {
				t.Fatalf("docs/ramctl.md: %q does not run ramctl", line)
			}
			cmd := exec.CommandContext(ctx, ramctlBin, strings.Fields(args)...)
			cmd.Env = append(os.Environ(), env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != want {
				t.Fatalf("ramctl %s: exit %d, the doc says %d:\n%s", args, code, want, out)
			}
			ran++
		}
	}
	if ran < 15 {
		t.Fatalf("ran only %d commands of docs/ramctl.md", ran)
	}
	t.Logf("ran %d commands of docs/ramctl.md", ran)
}
