package mesh

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestEncryptedMeshRefusesInjection: on a keyed mesh, messages from a
// daemon with another key or none, sent straight to a member's address
// over TCP (as the election's messages travel) or UDP, never reach the
// member's handler; the same message from a member with the key does.
func TestEncryptedMeshRefusesInjection(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	ms := startCluster(t, 3, func(c *Config) { c.EncryptKey = key })
	const kind = FirstHandlerKind + 2
	var got atomic.Int64
	if err := ms[1].RegisterHandler(kind, func([]byte) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	target, err := nodeAt("n2", ms[1].LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	wrong := newTestMesh(t, "wrong-key", func(c *Config) { c.EncryptKey = bytes.Repeat([]byte{8}, 32) })
	none := newTestMesh(t, "no-key", nil)
	for _, in := range []*Mesh{wrong, none} {
		ml := in.ml.(*memberlist.Memberlist)
		if err := ml.SendReliable(target, frame(kind, []byte("vote"))); err != nil {
			t.Logf("%s: reliable send: %v", in.cfg.NodeName, err)
		}
		if err := ml.SendBestEffort(target, frame(kind, []byte("vote"))); err != nil {
			t.Logf("%s: best-effort send: %v", in.cfg.NodeName, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // absence: give the packets time to arrive
	if n := got.Load(); n != 0 {
		t.Fatalf("the handler received %d messages from daemons without the key", n)
	}
	if err := ms[0].SendReliable("n2", kind, []byte("vote")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a keyed member's message arrives", func() (bool, string) {
		return got.Load() == 1, strconv.FormatInt(got.Load(), 10) + " received"
	})
}

func keyringFile(t *testing.T, path string) []string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}

// TestKeyRotation rotates a 3-node mesh from key1 to key2 (install
// everywhere, use everywhere, remove everywhere) without losing a member;
// a daemon with only the old key is then refused, and a member restarted
// with key1 still configured comes back with the saved keyring.
func TestKeyRotation(t *testing.T) {
	key1, key2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	dir := t.TempDir()
	file := func(i int) string { return filepath.Join(dir, "n"+strconv.Itoa(i)+".keyring") }
	ms := startCluster(t, 3, func(c *Config) {
		c.EncryptKey = key1
		c.KeyringFile = file(c.NodeID)
	})
	if got := keyringFile(t, file(1)); len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(key1) {
		t.Fatalf("initial keyring file %v", got)
	}
	if err := ms[0].UseKey(key2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("use before install: %v", err)
	}
	if err := ms[0].RemoveKey(key1); !errors.Is(err, ErrPrimaryKey) {
		t.Fatalf("remove the primary: %v", err)
	}
	if err := ms[0].InstallKey([]byte("short")); err == nil {
		t.Fatal("a 5-byte key was installed")
	}
	step := func(name string, op func(*Mesh) error) {
		t.Helper()
		for _, m := range ms {
			if err := op(m); err != nil {
				t.Fatalf("%s on %s: %v", name, m.cfg.NodeName, err)
			}
		}
		// Gossip goes on with the new keys: a full exchange and the
		// probes keep every member alive.
		time.Sleep(time.Second)
		for _, m := range ms {
			if n := m.NumAlive(); n != 3 {
				t.Fatalf("after %s, %s sees %d alive", name, m.cfg.NodeName, n)
			}
		}
	}
	step("install", func(m *Mesh) error { return m.InstallKey(key2) })
	step("use", func(m *Mesh) error { return m.UseKey(key2) })
	step("remove", func(m *Mesh) error { return m.RemoveKey(key1) })
	keys, err := ms[2].Keys()
	if err != nil || len(keys) != 1 || !keys[0].Primary || keys[0].Fingerprint != KeyFingerprint(key2) {
		t.Fatalf("keys after rotation: %+v %v", keys, err)
	}
	if got := keyringFile(t, file(3)); len(got) != 1 || got[0] != base64.StdEncoding.EncodeToString(key2) {
		t.Fatalf("keyring file after rotation %v", got)
	}

	old := newTestMesh(t, "old-key", func(c *Config) { c.EncryptKey = key1; c.Seeds = []string{ms[0].LocalAddr()} })
	old.Start()
	assertNeverSees(t, ms[0], "old-key", time.Second)

	// n3 restarts with key1 still in its configuration: the keyring file
	// (key2) wins, and it rejoins.
	if err := ms[2].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	_ = ms[2].Shutdown()
	n3 := newTestMesh(t, "n3", func(c *Config) {
		c.NodeID, c.EncryptKey, c.KeyringFile, c.Seeds = 3, key1, file(3), []string{ms[0].LocalAddr()}
	})
	n3.SetLocal(NodeState{NodeID: 3, Role: RoleReplica, DataState: DataReady, APIURL: "http://n3"})
	n3.Start()
	waitMembers(t, ms[0], []string{"n3"}, Alive)
	waitMembers(t, n3, []string{"n1", "n2"}, Alive)
	if l := liveness(ms[0], "old-key"); l != "" {
		t.Fatalf("old-key admitted (%s)", l)
	}
}

func TestKeyringPlaintextAndBadFiles(t *testing.T) {
	m := newTestMesh(t, "plain", nil)
	if m.Encrypted() {
		t.Fatal("a mesh without key reports encryption")
	}
	for name, err := range map[string]error{
		"keys":    func() error { _, err := m.Keys(); return err }(),
		"install": m.InstallKey(bytes.Repeat([]byte{1}, 16)),
		"use":     m.UseKey(bytes.Repeat([]byte{1}, 16)),
		"remove":  m.RemoveKey(bytes.Repeat([]byte{1}, 16)),
	} {
		if !errors.Is(err, ErrNotEncrypted) {
			t.Errorf("%s on a plaintext mesh: %v", name, err)
		}
	}
	dir := t.TempDir()
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
	}{
		"open":    {`["` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16)) + `"]`, 0o644},
		"garbage": {"not json", 0o600},
		"empty":   {"[]", 0o600},
		"short":   {`["c2hvcnQ="]`, 0o600},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{NodeName: "x", ClusterName: "test", BindAddr: "127.0.0.1", KeyringFile: p, Logger: testLogger("x")})
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("keyring file")) {
			t.Errorf("%s keyring file: %v", name, err)
		}
	}
}
