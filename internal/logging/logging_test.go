package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestJSONKeys(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo).With("component", "mesh").Info("member joined", "node", "node2")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	for _, k := range []string{"timestamp", "level", "component", "message", "node"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, buf.String())
		}
	}
	if m["level"] != "info" || m["message"] != "member joined" || m["component"] != "mesh" {
		t.Errorf("unexpected values: %v", m)
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"debug", "info", "warn", "error", "INFO"} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("want error for unknown level")
	}
}
