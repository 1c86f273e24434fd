package daemon

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/internal/testcerts"
)

// TestSecurityDocExample loads the complete configuration of
// docs/security.md with its files (certificates from a CA made here, the
// gossip key and the admin token, mode 0600) under a temporary /etc/ramd:
// it parses, validates, and everything the daemon reads at startup from
// it loads: the gossip key, the admin token, the API's TLS configuration
// and the peer client.
func TestSecurityDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, m := range regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(m[1], "[cluster]") {
			example = m[1]
		}
	}
	if example == "" {
		t.Fatal("docs/security.md has no complete ```toml example (with [cluster])")
	}
	etc := t.TempDir()
	tls := filepath.Join(etc, "tls")
	if err := os.Mkdir(tls, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, err := testcerts.NewCA(tls, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("node1", "10.0.0.11", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("gossip.key", base64.StdEncoding.EncodeToString(key)+"\n")
	write("admin.token", "0123456789abcdef0123456789abcdef\n")

	src := strings.ReplaceAll(example, "/etc/ramd", etc)
	cfg, err := configs.Parse(filepath.Join(etc, "ramd.toml"), []byte(src), nil)
	if err != nil {
		t.Fatalf("the documented configuration does not load: %v\n%s", err, src)
	}
	a := cfg.API
	if !a.SSLEnabled || a.VerifyClient == "none" || a.ClientCAFile == "" || a.CAFile == "" || a.AuthTokenFile == "" ||
		cfg.Mesh.EncryptKeyFile == "" || cfg.Security.AuditLog == "" || cfg.Security.RateLimit == 0 {
		t.Errorf("the example leaves a protection off: %+v %+v %+v", a, cfg.Mesh, cfg.Security)
	}
	if k, err := cfg.MeshKey(); err != nil || len(k) != 32 {
		t.Errorf("gossip key: %d bytes, %v", len(k), err)
	}
	if tok, err := a.AdminToken(); err != nil || tok == "" {
		t.Errorf("admin token: %v", err)
	}
	if _, err := serverTLS(a); err != nil {
		t.Errorf("API TLS: %v", err)
	}
	if _, err := peerHTTPClient(a); err != nil {
		t.Errorf("peer client: %v", err)
	}
}
