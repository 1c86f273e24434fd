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

func TestMeshKeyFile(t *testing.T) {
	dir := t.TempDir()
	const key = "Y3Jhenkgc2VjcmV0IGtleSBvZiAzMiBieXRlcyEhISE=" // 32 bytes
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, path, err string
		n               int
	}{
		{"good", write("good", key+"\n", 0o600), "", 32},
		{"open to others", write("open", key, 0o640), "chmod 600", 0},
		{"empty", write("empty", "\n", 0o600), "is empty", 0},
		{"not base64", write("bad", "not a key!", 0o600), "not valid base64", 0},
		{"wrong length", write("short", "c2hvcnQ=", 0o600), "decodes to 5 bytes", 0},
		{"missing", filepath.Join(dir, "nope"), "no such file", 0},
	} {
		cfg := Default()
		cfg.Mesh.EncryptKeyFile = c.path
		got, err := cfg.MeshKey()
		if len(got) != c.n || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %d bytes, %v; want %d, error containing %q", c.name, len(got), err, c.n, c.err)
		}
		if err != nil && (strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "mesh.encrypt_key_file")) {
			t.Errorf("%s: error %q shows the key or does not name the setting", c.name, err)
		}
	}
	cfg := Default()
	if got, err := cfg.MeshKey(); got != nil || err != nil {
		t.Errorf("no key: %v %v", got, err)
	}
	cfg.Mesh.EncryptKey = key
	if got, err := cfg.MeshKey(); len(got) != 32 || err != nil {
		t.Errorf("inline: %d bytes %v", len(got), err)
	}
}
