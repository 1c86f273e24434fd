package pg

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestScanProgress(t *testing.T) {
	in := "pg_basebackup: initiating base backup\n" +
		"    0/30000 kB (0%), 0/1 tablespace\r" +
		"15000/30000 kB (50%), 0/1 tablespace\r" +
		"30000/30000 kB (100%), 1/1 tablespace\n" +
		"pg_rewind: Done!\n"
	var out bytes.Buffer
	var got [][2]int64
	scanProgress(strings.NewReader(in), &out, func(d, tot int64) { got = append(got, [2]int64{d, tot}) })
	if len(got) != 3 || got[1] != [2]int64{15000, 30000} {
		t.Errorf("progress reports = %v", got)
	}
	if out.String() != "pg_basebackup: initiating base backup\npg_rewind: Done!\n" {
		t.Errorf("other output = %q", out.String())
	}
}

func TestProgressLogThrottles(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	now := time.Unix(0, 0)
	p := newProgressLog(log, "pg_rewind", "source", "10.0.0.1:5432")
	p.now = func() time.Time { return now }
	p.last = now
	p.report(1, 100) // too early: an operation shorter than the interval logs nothing
	now = now.Add(progressLogInterval)
	p.report(25, 100)
	now = now.Add(progressLogInterval / 2)
	p.report(50, 100) // throttled
	now = now.Add(progressLogInterval)
	p.report(2, 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["msg"] != "pg_rewind progress" || m["done_kb"] != 25.0 || m["total_kb"] != 100.0 || m["percent"] != 25.0 || m["source"] != "10.0.0.1:5432" {
		t.Errorf("line = %v", m)
	}
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["percent"] != 66.6 {
		t.Errorf("second line = %v (%v)", m, err)
	}
}
