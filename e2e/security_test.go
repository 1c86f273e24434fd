package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
	"github.com/ramd/ramd/internal/cluster"
	"github.com/ramd/ramd/internal/testcerts"
	"github.com/ramd/ramd/mesh"
)

func newGossipKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// secure rewrites a node's config: the API over TLS with client
// certificates required, and gossip keyed by meshLine ("" for none).
func secure(t *testing.T, n *cluster.Node, node testcerts.Pair, ca, meshLine string) {
	t.Helper()
	b, err := os.ReadFile(n.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cfg = strings.Replace(cfg, "[api]\n", fmt.Sprintf("[api]\nssl_enabled = true\ncert_file = %q\nkey_file = %q\nverify_client = \"required\"\nclient_ca_file = %q\nca_file = %q\n",
		node.CertFile, node.KeyFile, ca, ca), 1)
	cfg = strings.Replace(cfg, "[mesh]\n", "[mesh]\n"+meshLine+"\n", 1)
	if err := os.WriteFile(n.ConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecureCluster runs a 3-node cluster with the API over TLS
// (client certificates required) and gossip encrypted. Plain HTTP and
// clients without a certificate of the cluster's CA are refused; ramctl
// works with --cacert/--cert/--key (or their environment variables). A
// fourth daemon with another key, then with none, is not admitted: the
// members, the primary and the fencing token stay as they were. ramctl
// keys rotates the key on every node, and a node restarted afterwards
// (its configuration still naming the old key) keeps the rotated keyring.
func TestSecureCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pki := t.TempDir()
	ca, err := testcerts.NewCA(pki, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	rogue, _ := testcerts.NewCA(pki, "rogue")
	nodeCert, _ := ca.Issue("node", "127.0.0.1")
	operator, _ := ca.Issue("operator")
	intruder, _ := rogue.Issue("intruder")
	hc, err := apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: operator.CertFile, KeyFile: operator.KeyFile}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	hc.Timeout = 3 * time.Second

	key1 := newGossipKey(t)
	keyFile := filepath.Join(pki, "gossip.key")
	if err := os.WriteFile(keyFile, []byte(key1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := prepare(t, cluster.Options{Nodes: 4, HTTP: hc})
	var seeds []string
	for _, n := range c.Nodes[:3] {
		seeds = append(seeds, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", n.Addr, n.MeshPort)))
	}
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.ConfigPath)
		cfg := strings.Replace(string(b), "expect_nodes = 4", "expect_nodes = 3", 1)
		cfg = strings.Replace(cfg, cfgLine(cfg, "join = "), "join = ["+strings.Join(seeds, ", ")+"]", 1)
		if err := os.WriteFile(n.ConfigPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// node4 is the intruder; Formed and Close look at c.Nodes, the three
	// members.
	node4 := c.Nodes[3]
	c.Nodes = c.Nodes[:3]
	t.Cleanup(func() {
		_ = node4.Stop(30 * time.Second)
		if t.Failed() {
			dumpLog(t, node4.LogPath)
		}
	})
	for _, n := range c.Nodes {
		secure(t, n, nodeCert, ca.CertFile, fmt.Sprintf("encrypt_key_file = %q", keyFile))
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.WaitFormed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node1 := c.Nodes[0]
	url := node1.APIURL()

	// TLS: plain HTTP gets the TLS layer's 400, never the API.
	if code, body := plainGet(t, strings.Replace(url, "https://", "http://", 1)+"/api/v1/cluster/status"); code != 400 || strings.Contains(body, "success") {
		t.Errorf("plain HTTP to the TLS port: %d %q", code, body)
	}
	ramctl := func(env []string, stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, ramctlBin, append([]string{"--url", url, "--token", c.Token}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	certs := []string{"--cacert", ca.CertFile, "--cert", operator.CertFile, "--key", operator.KeyFile}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no CA", nil, "certificate signed by unknown authority"},
		{"no client certificate", []string{"--cacert", ca.CertFile}, ""},
		{"certificate of another CA", []string{"--cacert", ca.CertFile, "--cert", intruder.CertFile, "--key", intruder.KeyFile}, ""},
	} {
		out, err := ramctl(nil, "", append(c.args, "list")...)
		if err == nil || !strings.Contains(out, c.want) || strings.Contains(out, "node1") {
			t.Errorf("ramctl list, %s: %v\n%s", c.name, err, out)
		}
	}
	out, err := ramctl([]string{"RAMCTL_CACERT=" + ca.CertFile, "RAMCTL_CERT=" + operator.CertFile, "RAMCTL_KEY=" + operator.KeyFile}, "", "list")
	if err != nil || !strings.Contains(out, "node3") {
		t.Fatalf("ramctl list with the CA and a client certificate: %v\n%s", err, out)
	}
	out, err = ramctl(nil, "", append(certs, "health")...)
	if err != nil || strings.Contains(out, "security") {
		t.Errorf("ramctl health (encrypted gossip on loopback: no finding): %v\n%s", err, out)
	}
	checkSecurityFindings(t, ctx, node1)
	// ramd status on the node: the local API over TLS with ca_file and the
	// node's own certificate as client certificate.
	if out, err := exec.CommandContext(ctx, ramdBin, "status", "--config", node1.ConfigPath).CombinedOutput(); err != nil || !strings.Contains(string(out), "node3") {
		t.Errorf("ramd status over TLS: %v\n%s", err, out)
	}

	// Intruders: node4 with another key, then with none.
	plain, err := os.ReadFile(node4.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, intruderKey := range []string{fmt.Sprintf("encrypt_key = %q", newGossipKey(t)), ""} {
		if err := os.WriteFile(node4.ConfigPath, plain, 0o644); err != nil {
			t.Fatal(err)
		}
		secure(t, node4, nodeCert, ca.CertFile, intruderKey)
		// A keyring file from the previous run would win over the
		// configuration: start from the configured key.
		os.Remove(filepath.Join(node4.StateDir, "gossip.keyring"))
		if err := node4.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() string {
			if _, err := node4.Status(ctx); err != nil {
				return err.Error()
			}
			return ""
		})
		time.Sleep(3 * time.Second) // absence: the join and a few gossip rounds
		for _, n := range append(c.Nodes[:3:3], node4) {
			s, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := 3
			if n == node4 {
				want = 1
			}
			if len(s.Nodes) != want {
				t.Errorf("intruder %q: %s sees %d nodes, want %d", intruderKey, n.Name, len(s.Nodes), want)
			}
			if n != node4 && (s.PrimaryNodeID != before.PrimaryNodeID || s.FencingToken != before.FencingToken) {
				t.Errorf("intruder %q: %s: primary %d token %d, before %d %d", intruderKey, n.Name, s.PrimaryNodeID, s.FencingToken, before.PrimaryNodeID, before.FencingToken)
			}
		}
		if err := node4.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// Rotation with ramctl, on every member.
	key2 := newGossipKey(t)
	k2, _ := base64.StdEncoding.DecodeString(key2)
	k1, _ := base64.StdEncoding.DecodeString(key1)
	fp1, fp2 := mesh.KeyFingerprint(k1), mesh.KeyFingerprint(k2)
	steps := []struct {
		args  []string
		stdin string
	}{
		{[]string{"keys", "install", "-"}, key2 + "\n"},
		{[]string{"keys", "use", key2}, ""},
		{[]string{"keys", "remove", fp1}, ""},
	}
	for _, s := range steps {
		out, err := ramctl(nil, s.stdin, append(certs, s.args...)...)
		if err != nil || strings.Count(out, fp2) != 3 {
			t.Fatalf("ramctl %v: %v\n%s", s.args, err, out)
		}
	}
	if out, err := ramctl(nil, "", append(certs, "keys", "remove", fp2)...); err == nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("removing the primary key everywhere: %v\n%s", err, out)
	}
	keyrings := func() []string {
		out, err := ramctl(nil, "", append(certs, "--json", "keys", "list")...)
		if err != nil {
			t.Fatalf("ramctl keys list: %v\n%s", err, out)
		}
		var res []struct {
			Name    string `json:"name"`
			Keyring struct {
				Keys []mesh.KeyInfo `json:"keys"`
			} `json:"keyring"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var got []string
		for _, r := range res {
			got = append(got, fmt.Sprintf("%s:%v", r.Name, r.Keyring.Keys))
		}
		return got
	}
	want := fmt.Sprintf("[node1:[{%[1]s true}] node2:[{%[1]s true}] node3:[{%[1]s true}]]", fp2)
	if got := fmt.Sprint(keyrings()); got != want {
		t.Fatalf("keyrings after rotation: %s, want %s", got, want)
	}
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatalf("after rotation: %v", err)
	}

	// node3 restarts; its configuration still names key1, the keyring
	// file (key2) wins and it rejoins.
	node3 := c.Nodes[2]
	if err := node3.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := node3.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitFormed(ctx); err != nil {
		t.Fatalf("after restarting node3: %v", err)
	}
	if got := fmt.Sprint(keyrings()); got != want {
		t.Fatalf("keyrings after restarting node3: %s, want %s", got, want)
	}
}

// cfgLine returns the line of cfg starting with prefix.
func cfgLine(cfg, prefix string) string {
	for _, l := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return prefix
}

func plainGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("plain GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkSecurityFindings: n's /api/v1/cluster/health lists exactly the
// findings named (this cluster's nodes listen on network addresses).
func checkSecurityFindings(t *testing.T, ctx context.Context, n *cluster.Node, want ...string) {
	t.Helper()
	r, err := n.Client().Get(ctx, "/api/v1/cluster/health")
	if err != nil {
		t.Fatal(err)
	}
	var h apiclient.Health
	if err := r.Decode(&h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range h.SecurityFindings {
		if f.NodeID != n.ID || f.Message == "" {
			t.Errorf("finding %+v", f)
		}
		got = append(got, f.Check)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: security findings %v, want %v", n.Name, got, want)
	}
}
