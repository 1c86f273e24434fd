package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewFormat(&buf, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.With("component", "election").Info("lease lost", "token", 3)
	line := buf.String()
	for _, want := range []string{"timestamp=", "level=info", "component=election", `message="lease lost"`, "token=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("missing %q in %q", want, line)
		}
	}
	if _, err := NewFormat(&buf, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("want an error naming the bad format, got %v", err)
	}
	buf.Reset()
	l, _ = NewFormat(&buf, "", slog.LevelInfo)
	l.Info("x")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("default format is not JSON: %q", buf.String())
	}
}

// TestFileReopen is what logrotate does: rename, then ask for a reopen.
func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ramd.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := New(f, slog.LevelInfo)
	l.Info("before rotation")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("still into the renamed file")
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Info("after reopen")
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if n := strings.Count(string(old), "\n"); n != 2 || !strings.Contains(string(old), "before rotation") {
		t.Errorf("rotated file: %d lines: %s", n, old)
	}
	if n := strings.Count(string(cur), "\n"); n != 1 || !strings.Contains(string(cur), "after reopen") {
		t.Errorf("new file: %d lines: %s", n, cur)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("new file mode: %v %v", st, err)
	}
	// A path that cannot be reopened keeps the old file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Error("reopening onto a directory succeeded")
	}
	l.Info("kept going")
}

func TestOpenFileError(t *testing.T) {
	_, err := OpenFile(filepath.Join(t.TempDir(), "missing", "ramd.log"))
	if err == nil || !strings.Contains(err.Error(), "logging.file") {
		t.Errorf("want an error naming logging.file, got %v", err)
	}
}
