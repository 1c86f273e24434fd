package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVitalSignsMetrics: a running node exports its PostgreSQL's vital
// signs, collected every metrics_interval on its own goroutine, and they
// move with the load: commits after inserts, database size, WAL.
func TestVitalSignsMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := launch(t, 1, "metrics_interval = \"1s\"\n")
	n := waitWritable(t, c, 60*time.Second, nil)
	url := fmt.Sprintf("http://%s:%d/metrics", n.Addr, n.MetricsPort)
	var before map[string]float64
	eventually(t, 20*time.Second, func() string {
		var err error
		if before, err = scrape(url); err != nil {
			return err.Error()
		}
		if before["ramd_postgresql_max_connections"] != 100 {
			return "no statistics round yet"
		}
		return ""
	})
	for _, name := range []string{`ramd_postgresql_connections{state="active"}`, "ramd_mesh_health_score",
		"ramd_backup_last_success_timestamp_seconds", "go_goroutines", "process_open_fds", `ramd_postgresql_database_size_bytes{database="postgres"}`} {
		if _, ok := before[name]; !ok {
			t.Errorf("no series %s", name)
		}
	}
	conn := connect(t, ctx, n)
	if _, err := conn.Exec(ctx, "CREATE TABLE vitals (id int)"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := conn.Exec(ctx, "INSERT INTO vitals VALUES ($1)", i); err != nil {
			t.Fatal(err)
		}
	}
	// A backend that stays idle reports its statistics up to 10 s late;
	// one that exits reports them at once.
	conn.Close(ctx)
	eventually(t, 20*time.Second, func() string {
		after, err := scrape(url)
		if err != nil {
			return err.Error()
		}
		k := "ramd_postgresql_transactions_committed_total"
		w := "ramd_postgresql_wal_written_bytes_total"
		if after[k] < before[k]+50 || after[w] <= before[w] {
			return fmt.Sprintf("%s %v → %v, %s %v → %v", k, before[k], after[k], w, before[w], after[w])
		}
		return ""
	})
}

// scrape reads a Prometheus text exposition into series → value (series
// as written: name{labels}).
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, nil
}
