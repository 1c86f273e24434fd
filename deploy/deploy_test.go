package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ramd/ramd/metrics"
)

// tool finds a command the test needs: missing, it skips locally and
// fails in CI (.ci/run installs it).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs %s): %v", name, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install --no-install-recommends %s)", name, pkg)
	}
	return p
}

func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/ramd-alerts.yml"},
		{"check", "config", "prometheus/prometheus.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRuleMetrics: every metric an alert uses is one the daemon
// exports, and every alert the README promises is there.
func TestAlertRuleMetrics(t *testing.T) {
	b, err := os.ReadFile("prometheus/ramd-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	// promtool (TestAlertRules) checks the YAML; here each rule is an
	// "- alert: NAME" line followed by a one-line "expr:" (the module has
	// no YAML parser, and one-line expressions keep the file readable).
	rule := regexp.MustCompile(`(?m)^\s*- alert: (\S+)\n(?:\s*#.*\n)*\s*expr: (.+)$`)
	exported := exportedNames(t)
	var alerts []string
	for _, m := range rule.FindAllStringSubmatch(string(b), -1) {
		alerts = append(alerts, m[1])
		checkExpr(t, "alert "+m[1], m[2], exported)
	}
	if n := strings.Count(string(b), "- alert:"); n != len(alerts) {
		t.Errorf("%d alerts, %d with a one-line expr right after the name", n, len(alerts))
	}
	for _, want := range []string{"RamdNoPrimary", "RamdMultiplePrimaries", "RamdReplicationLagHigh", "RamdMeshMemberDead", "RamdLeaseAboutToExpire", "RamdCoordinatorLost"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing", want)
		}
	}
}

// TestDashboard parses the Grafana dashboard and checks that every metric
// name in its queries (panels, rows, annotations) is one the daemon
// exports, as listed by metrics.Names from a registry. With promtool
// installed, every query is also parsed by Prometheus itself.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/ramd-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash["uid"] == "" || dash["title"] == "" {
		t.Error("dashboard needs a uid and a title")
	}
	var exprs []string
	ids := map[float64]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			if _, isPanel := v["gridPos"]; isPanel {
				id, _ := v["id"].(float64)
				if ids[id] {
					t.Errorf("panel id %v used twice", id)
				}
				ids[id] = true
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(dash)
	if len(exprs) < 10 {
		t.Fatalf("only %d queries found", len(exprs))
	}
	exported := exportedNames(t)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, n := range checkExpr(t, "dashboard query", e, exported) {
			used[n] = true
		}
	}
	// The overview covers what the issue asks for.
	for _, want := range []string{"ramd_node_role", "ramd_fencing_token", "ramd_failovers_total", "ramd_postgresql_standby_lag_bytes", "ramd_api_requests_total", "ramd_api_request_duration_seconds_bucket", "ramd_mesh_members",
		"ramd_postgresql_connections", "ramd_postgresql_transactions_committed_total", "ramd_postgresql_blocks_hit_total",
		"ramd_postgresql_wal_written_bytes_total", "ramd_postgresql_replication_slot_retained_bytes"} {
		if !used[want] {
			t.Errorf("dashboard does not show %s", want)
		}
	}

	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is required in CI: ", err)
		}
		t.Log("promtool not installed: dashboard queries not parsed")
		return
	}
	// Grafana's variables replaced by what they expand to, each query
	// becomes a recording rule, and promtool parses the lot.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	repl := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$__interval", "15s", "$job", "ramd")
	for i, e := range exprs {
		q, _ := json.Marshal(repl.Replace(e))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool rejects a dashboard query: %v\n%s", err, out)
	}
}

// exportedNames is metrics.Names plus the series a histogram exposes and
// Prometheus's own "up".
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names, err := metrics.Names()
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{"up": true}
	for _, n := range names {
		set[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			set[n+s] = true
		}
	}
	return set
}

var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	braces     = regexp.MustCompile(`\{[^}]*\}`)
	brackets   = regexp.MustCompile(`\[[^\]]*\]`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	number     = regexp.MustCompile(`\b\d[A-Za-z0-9_.]*`) // 1, 0.5, 1e6, 5m
	identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "by": true, "without": true}
)

// checkExpr reports every metric name in a PromQL expression that is not
// exported, and returns the names found. It is a tokenizer, not a parser:
// label matchers, ranges, grouping clauses and strings are dropped, and an
// identifier followed by "(" is a function.
func checkExpr(t *testing.T, where, expr string, exported map[string]bool) []string {
	t.Helper()
	found, missing := metricNames(expr, exported)
	for _, name := range missing {
		t.Errorf("%s uses %s, which the daemon does not export: %s", where, name, expr)
	}
	if len(found) == 0 {
		t.Errorf("%s: no metric found in %q", where, expr)
	}
	return found
}

// metricNames returns the metric names in expr and those of them not in
// exported.
func metricNames(expr string, exported map[string]bool) (found, missing []string) {
	s := quoted.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, " ")
	s = brackets.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = number.ReplaceAllString(s, " ")
	for _, m := range identifier.FindAllStringSubmatch(s, -1) {
		name := strings.TrimSpace(m[0])
		if m[1] != "" || keywords[strings.ToLower(name)] {
			continue // a function or aggregation, or an operator
		}
		found = append(found, name)
		if !exported[name] {
			missing = append(missing, name)
		}
	}
	return found, missing
}

func TestMetricNames(t *testing.T) {
	exported := exportedNames(t)
	for expr, want := range map[string]string{
		`histogram_quantile(0.9, sum by (le) (rate(ramd_failover_duration_seconds_bucket{job="$job"}[$__rate_interval])))`: "ramd_failover_duration_seconds_bucket|",
		`max by (node) (ramd_lease_remaining_seconds) < 1 and on (node, instance) ramd_node_role{role="primary"} == 1`:     "ramd_lease_remaining_seconds ramd_node_role|",
		`(sum(ramd_coordinatr{x="a}b"}) or vector(0)) == 0`:                                                                "ramd_coordinatr|ramd_coordinatr",
		`sum(ramd_node_role) > bool 1 unless ramd_fencing_tokens offset 5m`:                                                "ramd_node_role ramd_fencing_tokens|ramd_fencing_tokens",
	} {
		found, missing := metricNames(expr, exported)
		if got := strings.Join(found, " ") + "|" + strings.Join(missing, " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}
