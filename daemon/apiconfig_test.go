package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramd/ramd/configs"
)

func TestOpenAuditLog(t *testing.T) {
	if f, err := openAuditLog(""); f != nil || err != nil {
		t.Fatalf("unset: %v %v", f, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	f, err := openAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("one\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	// Reopening appends.
	f, err = openAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if b, _ := os.ReadFile(path); string(b) != "one\ntwo\n" {
		t.Errorf("content %q", b)
	}
	for _, bad := range []string{filepath.Join(dir, "missing", "audit.jsonl"), dir} {
		if _, err := openAuditLog(bad); err == nil || !strings.Contains(err.Error(), "security.audit_log") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestAPIConfig(t *testing.T) {
	cfg := configs.Default()
	cfg.API.ReadToken = "read-token-0123456789"
	cfg.Security = configs.SecurityConfig{RateLimit: 7, MaxConnections: 3, BlockedIPs: []string{"192.0.2.1"},
		TrustedProxies: []string{"10.0.0.0/8"}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d := &Daemon{cfg: cfg, adminToken: "admin-token-0123456789", log: log.With("component", "daemon"), baseLog: log}
	c := d.apiConfig()
	if c.Limits.RateLimit != 7 || c.Limits.BlockedIPs[0] != "192.0.2.1" || c.Limits.TrustedProxies[0] != "10.0.0.0/8" {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.Auth.AdminToken != "admin-token-0123456789" || c.Auth.ReadToken != cfg.API.ReadToken || !c.Auth.PublicHealthChecks {
		t.Errorf("auth %+v", c.Auth)
	}
	if c.AuditFile != nil {
		t.Errorf("audit file set without audit_log: %#v", c.AuditFile)
	}
	c.AuditLogger.Info("x")
	if got := logs.String(); strings.Count(got, "component=") != 1 || !strings.Contains(got, "component=audit") {
		t.Errorf("audit logger: %q", got)
	}

	f, err := openAuditLog(filepath.Join(t.TempDir(), "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.auditFile = f
	if c := d.apiConfig(); c.AuditFile != f {
		t.Errorf("audit file not passed on")
	}
}
