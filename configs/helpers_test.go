package configs

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

// minimal is the smallest valid single-node configuration.
const minimal = `
[cluster]
node_id = 1
data_directory = "/srv/pg/data"
`

// doc builds a document from the top-level keys top, extra [cluster] keys
// and further tables rest, around the required keys of minimal.
func doc(top, cluster, rest string) string {
	return top + "\n[cluster]\nnode_id = 1\ndata_directory = \"/srv/pg/data\"\n" + cluster + "\n" + rest + "\n"
}

// mustParse parses src (named /etc/ramd/ramd.toml) or fails the test.
func mustParse(t *testing.T, src string, environ ...string) *Config {
	t.Helper()
	c, err := Parse("/etc/ramd/ramd.toml", []byte(src), environ)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// parseErr parses src and returns the error text, failing when there is
// none.
func parseErr(t *testing.T, src string, environ ...string) string {
	t.Helper()
	_, err := Parse("ramd.toml", []byte(src), environ)
	if err == nil {
		t.Fatalf("Parse succeeded, want an error\n%s", src)
	}
	return err.Error()
}

func wantContains(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("error %q does not contain %q", got, w)
		}
	}
}

func TestMeshAdvertiseHost(t *testing.T) {
	for _, tc := range []struct{ bind, adv, want string }{
		{"0.0.0.0", "", "127.0.0.1"},
		{"::", "", "127.0.0.1"},
		{"10.0.0.1", "", "10.0.0.1"},
		{"0.0.0.0", "192.0.2.1", "192.0.2.1"},
		{"10.0.0.1", "192.0.2.1", "192.0.2.1"},
	} {
		c := Default()
		c.Mesh.BindAddr, c.Mesh.AdvertiseAddr = tc.bind, tc.adv
		if got := c.MeshAdvertiseHost(); got != tc.want {
			t.Errorf("bind %q advertise %q: got %q, want %q", tc.bind, tc.adv, got, tc.want)
		}
	}
}

func TestAPIURL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"defaults", func(c *Config) {}, "http://127.0.0.1:8080"},
		{"api host", func(c *Config) { c.API.Host = "10.0.0.5"; c.API.Port = 8081 }, "http://10.0.0.5:8081"},
		{"wildcard uses mesh", func(c *Config) { c.API.Host = "0.0.0.0"; c.Mesh.AdvertiseAddr = "192.0.2.9" }, "http://192.0.2.9:8080"},
		{"empty host uses mesh", func(c *Config) { c.API.Host = ""; c.Mesh.BindAddr = "10.1.1.1" }, "http://10.1.1.1:8080"},
		{"ipv6", func(c *Config) { c.API.Host = "fd00::5" }, "http://[fd00::5]:8080"},
		{"tls", func(c *Config) { c.API.Host = "db1"; c.API.SSLEnabled = true }, "https://db1:8080"},
		{"advertise_url", func(c *Config) { c.API.AdvertiseURL = "https://lb.example/ramd/" }, "https://lb.example/ramd"},
	} {
		c := Default()
		tc.mutate(c)
		if got := c.APIURL(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEncryptKeyBytes(t *testing.T) {
	c := Default()
	if k, err := c.EncryptKeyBytes(); k != nil || err != nil {
		t.Errorf("empty key: %v %v", k, err)
	}
	for _, n := range []int{16, 24, 32} {
		c.Mesh.EncryptKey = base64.StdEncoding.EncodeToString(make([]byte, n))
		if k, err := c.EncryptKeyBytes(); err != nil || len(k) != n {
			t.Errorf("%d bytes: %v %v", n, len(k), err)
		}
	}
	for _, bad := range []string{"!!!", base64.StdEncoding.EncodeToString(make([]byte, 20))} {
		c.Mesh.EncryptKey = bad
		_, err := c.EncryptKeyBytes()
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		wantContains(t, err.Error(), "configs: mesh.encrypt_key")
	}
}

func TestRedacted(t *testing.T) {
	c := mustParse(t, richConfig)
	before := c.Clone()
	r := c.Redacted()
	for key, v := range map[string]string{
		"postgresql.password":             r.PostgreSQL.Password,
		"postgresql.replication_password": r.PostgreSQL.ReplicationPassword,
		"api.auth_token":                  r.API.AuthToken,
		"mesh.encrypt_key":                r.Mesh.EncryptKey,
	} {
		if v != "<redacted>" {
			t.Errorf("%s = %q", key, v)
		}
	}
	if !reflect.DeepEqual(c, before) {
		t.Error("Redacted modified the original")
	}
	// Nothing secret survives in the encoded form.
	var buf bytes.Buffer
	if err := r.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{c.PostgreSQL.Password, c.PostgreSQL.ReplicationPassword, c.API.AuthToken, c.Mesh.EncryptKey} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("redacted output contains %q", secret)
		}
	}
	// Unset secrets stay empty, showing they are unset.
	r = Default().Redacted()
	if r.PostgreSQL.Password != "" || r.API.AuthToken != "" || r.Mesh.EncryptKey != "" {
		t.Errorf("empty secrets were replaced: %+v", r)
	}
}

func TestClone(t *testing.T) {
	c := mustParse(t, richConfig)
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatal("clone differs")
	}
	d.Cluster.Join[0] = "changed:1"
	d.Cluster.Tags["zone"] = "changed"
	d.PostgreSQL.Parameters["jit"] = "on"
	d.PostgreSQL.HBANetworks[0] = "changed"
	if c.Cluster.Join[0] == "changed:1" || c.Cluster.Tags["zone"] == "changed" ||
		c.PostgreSQL.Parameters["jit"] == "on" || c.PostgreSQL.HBANetworks[0] == "changed" {
		t.Error("clone shares lists or tables with the original")
	}
	// nil and empty are preserved.
	e := Default()
	e.Cluster.Join = []string{}
	f := e.Clone()
	if f.Cluster.Join == nil || f.Cluster.Tags != nil {
		t.Errorf("nil/empty not preserved: %#v %#v", f.Cluster.Join, f.Cluster.Tags)
	}
}
