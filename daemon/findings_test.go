package daemon

import (
	"strings"
	"testing"
)

func TestSecurityFindings(t *testing.T) {
	checks := func(f []string) string { return strings.Join(f, ",") }
	for _, c := range []struct {
		name      string
		encrypted bool
		meshBind  string
		tls       bool
		apiHost   string
		tokens    bool
		want      string
	}{
		{"plaintext gossip on a network", false, "10.0.0.1", true, "10.0.0.1", true, "gossip_encryption"},
		{"plaintext gossip on every address", false, "0.0.0.0", true, "0.0.0.0", true, "gossip_encryption"},
		{"plaintext gossip on loopback", false, "127.0.0.1", true, "127.0.0.1", true, ""},
		{"encrypted", true, "0.0.0.0", true, "0.0.0.0", true, ""},
		{"tokens over plain HTTP", true, "0.0.0.0", false, "0.0.0.0", true, "api_tls"},
		{"no tokens over plain HTTP", true, "0.0.0.0", false, "0.0.0.0", false, ""},
		{"tokens over plain HTTP on loopback", true, "0.0.0.0", false, "127.0.0.1", true, ""},
		{"both", false, "192.0.2.1", false, "::", true, "gossip_encryption,api_tls"},
	} {
		var got []string
		for _, f := range securityFindings(3, c.encrypted, c.meshBind, c.tls, c.apiHost, c.tokens) {
			if f.NodeID != 3 || f.Message == "" {
				t.Errorf("%s: %+v", c.name, f)
			}
			got = append(got, f.Check)
		}
		if checks(got) != c.want {
			t.Errorf("%s: %q, want %q", c.name, checks(got), c.want)
		}
	}
}
