package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramd/ramd/internal/apiclient"
)

// fakeNode serves /api/v1/keys and records the changes it receives.
type fakeNode struct {
	id      int
	mu      sync.Mutex
	keys    []string // fingerprints, primary first
	changes []string
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != http.MethodGet {
		f.changes = append(f.changes, r.Method+" "+r.URL.Path)
	}
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/keys" {
		var body struct{ Key string }
		json.NewDecoder(r.Body).Decode(&body)
		k, _ := base64.StdEncoding.DecodeString(body.Key)
		f.keys = append(f.keys, fingerprint(k))
	}
	var ks []map[string]any
	for i, k := range f.keys {
		ks = append(ks, map[string]any{"fingerprint": k, "primary": i == 0})
	}
	data, _ := json.Marshal(map[string]any{"node_id": f.id, "name": fmt.Sprintf("node%d", f.id), "encrypted": true, "keys": ks})
	fmt.Fprintf(w, `{"success":true,"data":%s,"message":"","timestamp":""}`, data)
}

func TestKeysEveryNode(t *testing.T) {
	old := bytes.Repeat([]byte{1}, 32)
	fpOld := fingerprint(old)
	newKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	n1, n2 := &fakeNode{id: 1, keys: []string{fpOld}}, &fakeNode{id: 2, keys: []string{fpOld}}
	s1, s2 := httptest.NewServer(n1), httptest.NewServer(n2)
	defer s1.Close()
	defer s2.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	nodes := []map[string]any{{"node_id": 1, "name": "node1", "state": "alive", "api_url": s1.URL}, {"node_id": 2, "name": "node2", "state": "alive", "api_url": s2.URL}}
	var status *httptest.Server
	withNodes := func(extra ...map[string]any) {
		all := append(append([]map[string]any{}, nodes...), extra...)
		data, _ := json.Marshal(map[string]any{"nodes": all})
		if status != nil {
			status.Close()
		}
		status = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"success":true,"data":%s,"message":"","timestamp":""}`, data)
		}))
	}
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		c := &apiclient.Client{URLs: []string{status.URL}, Timeout: 2 * time.Second}
		err := keys(c, args, false, strings.NewReader(stdin), &out)
		return out.String(), err
	}

	withNodes()
	if out, err := run(newKey+"\n", "install", "-"); err != nil || strings.Count(out, fingerprint(bytes.Repeat([]byte{2}, 32))) != 2 {
		t.Fatalf("install on two nodes: %v\n%s", err, out)
	}
	// A third member is unreachable: use refuses before changing anything.
	withNodes(map[string]any{"node_id": 3, "name": "node3", "state": "dead", "api_url": deadURL})
	before := len(n1.changes) + len(n2.changes)
	out, err := run("", "use", newKey)
	if err == nil || !strings.Contains(err.Error(), "nothing changed") || !strings.Contains(err.Error(), "node3 (node 3) is unreachable") {
		t.Fatalf("use with a node down: %v\n%s", err, out)
	}
	if after := len(n1.changes) + len(n2.changes); after != before {
		t.Fatalf("use changed %d nodes although one was down", after-before)
	}
	// So does install; list reports every node, the failed one included.
	out, err = run("", "install", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 16)))
	if err == nil || !strings.Contains(err.Error(), "nothing changed") || len(n1.changes)+len(n2.changes) != before {
		t.Fatalf("install with a node down: %v\n%s", err, out)
	}
	out, err = run("", "list")
	if err == nil || !strings.Contains(err.Error(), "1 of 3 nodes could not be read") || !strings.Contains(out, "node3") || !strings.Contains(out, "FAILED") || strings.Count(out, fpOld) != 2 {
		t.Fatalf("list with a node down: %v\n%s", err, out)
	}
	// remove of a key some node encrypts with is refused.
	withNodes()
	if _, err := run("", "remove", fpOld); err == nil || !strings.Contains(err.Error(), "encrypts with key "+fpOld) {
		t.Fatalf("remove the primary: %v", err)
	}
	for _, bad := range [][]string{{}, {"rotate"}, {"install"}, {"install", "short"}, {"list", "x"}, {"install", fpOld}} {
		if _, err := run("", bad...); err == nil {
			t.Errorf("keys %v accepted", bad)
		}
	}
}
