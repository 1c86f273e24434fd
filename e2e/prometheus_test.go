package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/cluster"
)

// TestPrometheus runs Debian's prometheus against a 3-node cluster
// (scraping every node's metrics port each second, with the shipped
// deploy/prometheus/ramd-alerts.yml loaded), kills the primary's daemon
// and PostgreSQL with SIGKILL, and checks through Prometheus's HTTP API
// that the scraped series tell what happened: the fencing token went to 2,
// another node reports role primary, the failover history counts a
// failure, the coordinator observed a failover duration, and the killed
// node's target is down.
func TestPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is required in CI (.ci/run installs it): ", err)
		}
		t.Skip("prometheus not installed (apt-get install --no-install-recommends prometheus)")
	}
	rules, err := filepath.Abs("../deploy/prometheus/ramd-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, old := formedPrimary(t, ctx)

	ports, err := cluster.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var targets strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&targets, "      - targets: [\"%s:%d\"]\n        labels: { node: %s }\n", n.Addr, n.MetricsPort, n.Name)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: ramd
    static_configs:
%s`, rules, targets.String())
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	prom := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	var promLog strings.Builder
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		_ = prom.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", promLog.String())
		}
	})
	base := "http://" + addr

	// Every node scraped, the bootstrap recorded under token 1.
	eventually(t, 20*time.Second, func() string {
		if v, err := promScalar(base, `sum(up{job="ramd"})`); err != nil || v != 3 {
			return fmt.Sprintf("targets up: %v %v", v, err)
		}
		if v, err := promScalar(base, `max(ramd_fencing_token)`); err != nil || v != 1 {
			return fmt.Sprintf("max(ramd_fencing_token) = %v %v", v, err)
		}
		return ""
	})
	if ok, why := promRulesHealthy(base); !ok {
		t.Fatalf("shipped alert rules: %s", why)
	}

	if err := old.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashPostgres(t, old)
	newP := waitWritable(t, c, 30*time.Second, old)
	t.Logf("kill -9 of %s: %s is the new primary", old.Name, newP.Name)

	checks := []struct{ query, want string }{
		{`max(ramd_fencing_token)`, "== 2"},
		{`max(ramd_failovers_total{reason="failure"})`, ">= 1"},
		{`max(ramd_failovers_total{reason="bootstrap"})`, "== 1"},
		{`sum(ramd_failover_duration_seconds_count)`, ">= 1"},
		{`count(ramd_node_role{role="primary"} == 1)`, "== 1"},
		{fmt.Sprintf(`ramd_node_role{role="primary",node=%q}`, newP.Name), "== 1"},
		{fmt.Sprintf(`up{node=%q}`, old.Name), "== 0"},
		{`sum(ramd_coordinator)`, "== 1"},
		{`max(ramd_cluster_leader_changes_total)`, ">= 1"},
		{fmt.Sprintf(`ramd_lease_remaining_seconds{node=%q}`, newP.Name), "> 0"},
	}
	eventually(t, 15*time.Second, func() string {
		for _, ch := range checks {
			v, err := promScalar(base, ch.query)
			if err != nil {
				return fmt.Sprintf("%s: %v", ch.query, err)
			}
			if !compare(v, ch.want) {
				return fmt.Sprintf("%s = %v, want %s", ch.query, v, ch.want)
			}
		}
		return ""
	})
	if d, err := promScalar(base, `sum(ramd_failover_duration_seconds_sum)`); err == nil {
		t.Logf("failover duration observed by the coordinator: %.2f s", d)
	}
}

func compare(v float64, want string) bool {
	op, num, _ := strings.Cut(want, " ")
	w, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return false
	}
	switch op {
	case "==":
		return v == w
	case ">=":
		return v >= w
	case ">":
		return v > w
	}
	return false
}

// promScalar runs an instant query that must return exactly one sample.
func promScalar(base, query string) (float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query failed: %s", body.Error)
	}
	if n := len(body.Data.Result); n != 1 {
		return 0, fmt.Errorf("%d samples, want 1: %+v", n, body.Data.Result)
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// promRulesHealthy reports whether Prometheus loaded the rule groups and
// evaluates every rule without error.
func promRulesHealthy(base string) (bool, string) {
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, err.Error()
	}
	n := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				return false, fmt.Sprintf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if n == 0 {
		return false, "no rules loaded"
	}
	return true, ""
}
