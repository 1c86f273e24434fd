package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, path, want, err string
	}{
		{"good", write("good", "  0123456789abcdef0123\n", 0o600), "0123456789abcdef0123", ""},
		{"open to others", write("open", "0123456789abcdef0123", 0o644), "", "chmod 600"},
		{"empty", write("empty", " \n", 0o600), "", "is empty"},
		{"short", write("short", "abc", 0o600), "", "too short"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	} {
		got, err := APIConfig{AuthTokenFile: c.path}.AdminToken()
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %q, %v; want %q, error containing %q", c.name, got, err, c.want, c.err)
		}
	}
	if got, err := (APIConfig{AuthToken: "inline-token-0123456789"}).AdminToken(); got != "inline-token-0123456789" || err != nil {
		t.Errorf("inline: %q %v", got, err)
	}
}
