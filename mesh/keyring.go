package mesh

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption uses memberlist's keyring: every packet and every TCP
// stream (push/pull, SendReliable, hence the election's messages) is
// sealed with AES-GCM under the primary key, and whatever arrives is tried
// against every installed key. With a keyring, memberlist refuses
// unencrypted input and never sends any (GossipVerifyIncoming/Outgoing),
// so a daemon without one of the keys can neither join nor be heard.
//
// Rotation, as in Consul and Serf: install the new key on every node (it
// then decrypts with it), make it primary everywhere (it then encrypts
// with it), remove the old one everywhere. The keyring is saved after
// every change in Config.KeyringFile, so a node restarted in the middle of
// a rotation comes back with the keys the others use.

// ErrNotEncrypted is returned by the keyring operations of a mesh that
// gossips in plaintext: a keyring cannot be added to a running memberlist.
var ErrNotEncrypted = errors.New("mesh: gossip encryption is off (no encrypt_key): set [mesh] encrypt_key on every node and restart them to turn it on")

// ErrUnknownKey is returned for a key or fingerprint not in the keyring.
var ErrUnknownKey = errors.New("mesh: no installed key has that fingerprint")

// KeyInfo describes one installed key without revealing it.
type KeyInfo struct {
	// Fingerprint is KeyFingerprint of the key.
	Fingerprint string `json:"fingerprint"`
	// Primary: the key outgoing messages are encrypted with.
	Primary bool `json:"primary"`
}

// KeyFingerprint names a key without revealing it: the first 8 bytes of
// its SHA-256, in hex. Enough to tell keys apart, useless for decrypting.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// loadKeyring reads a keyring file: a JSON array of base64 keys, the
// primary first (Serf's format). ok is false when the file does not exist.
func loadKeyring(path string) (keys [][]byte, ok bool, err error) {
	if path == "" {
		return nil, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("mesh: keyring file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("mesh: keyring file %s: mode %04o lets group or others read the gossip keys; chmod 600", path, st.Mode().Perm())
	}
	var texts []string
	if err := json.Unmarshal(b, &texts); err != nil {
		return nil, false, fmt.Errorf("mesh: keyring file %s: not a JSON array of base64 keys: %w", path, err)
	}
	if len(texts) == 0 {
		return nil, false, fmt.Errorf("mesh: keyring file %s holds no key; remove it to start from [mesh] encrypt_key", path)
	}
	for i, t := range texts {
		k, err := base64.StdEncoding.DecodeString(t)
		if err == nil {
			err = memberlist.ValidateKey(k)
		}
		if err != nil {
			return nil, false, fmt.Errorf("mesh: keyring file %s: key %d: %v", path, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, true, nil
}

// saveKeyring writes keys (primary first) to path with mode 0600,
// atomically: a crash leaves the old file or the new one.
func saveKeyring(path string, keys [][]byte) error {
	texts := make([]string, len(keys))
	for i, k := range keys {
		texts[i] = base64.StdEncoding.EncodeToString(k)
	}
	b, err := json.Marshal(texts)
	if err != nil {
		return fmt.Errorf("mesh: keyring file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("mesh: keyring file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(append(b, '\n')); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mesh: keyring file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mesh: keyring file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// newKeyring builds the keyring New starts with: the keyring file's keys
// when it exists (it holds the result of past rotations, which the
// configured key may predate), else the configured key alone, saved to
// the file. nil: plaintext.
func (m *Mesh) newKeyring() (*memberlist.Keyring, error) {
	cfg := m.cfg
	keys, fromFile, err := loadKeyring(cfg.KeyringFile)
	if err != nil {
		return nil, err
	}
	switch {
	case fromFile:
		if cfg.EncryptKey != nil && !containsKey(keys, cfg.EncryptKey) {
			m.log.Warn("the configured encrypt_key is not in the keyring file, which wins: it holds the keys of past rotations (remove the file to start from encrypt_key)",
				"keyring_file", cfg.KeyringFile)
		}
	case cfg.EncryptKey != nil:
		keys = [][]byte{cfg.EncryptKey}
		if cfg.KeyringFile != "" {
			if err := saveKeyring(cfg.KeyringFile, keys); err != nil {
				return nil, err
			}
		}
	default:
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("mesh: keyring: %w", err)
	}
	return kr, nil
}

func containsKey(keys [][]byte, key []byte) bool {
	for _, k := range keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// Encrypted reports whether gossip is encrypted.
func (m *Mesh) Encrypted() bool { return m.keyring != nil }

// Keys lists the installed keys, the primary first, by fingerprint.
func (m *Mesh) Keys() ([]KeyInfo, error) {
	if m.keyring == nil {
		return nil, ErrNotEncrypted
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	keys := m.keyring.GetKeys()
	out := make([]KeyInfo, len(keys))
	for i, k := range keys {
		out[i] = KeyInfo{Fingerprint: KeyFingerprint(k), Primary: i == 0}
	}
	return out, nil
}

// KeyByFingerprint returns the installed key with that fingerprint.
func (m *Mesh) KeyByFingerprint(fp string) ([]byte, error) {
	if m.keyring == nil {
		return nil, ErrNotEncrypted
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	for _, k := range m.keyring.GetKeys() {
		if KeyFingerprint(k) == fp {
			return append([]byte(nil), k...), nil
		}
	}
	return nil, ErrUnknownKey
}

// InstallKey adds key to the keyring (a no-op when it is there): this
// node then decrypts with it, but still encrypts with the primary.
func (m *Mesh) InstallKey(key []byte) error {
	if err := memberlist.ValidateKey(key); err != nil {
		return fmt.Errorf("mesh: install key: %w", err)
	}
	return m.changeKeys("install", func(kr *memberlist.Keyring) error { return kr.AddKey(key) })
}

// UseKey makes an installed key the primary one.
func (m *Mesh) UseKey(key []byte) error {
	return m.changeKeys("use", func(kr *memberlist.Keyring) error {
		if !containsKey(kr.GetKeys(), key) {
			return ErrUnknownKey
		}
		return kr.UseKey(key)
	})
}

// ErrPrimaryKey refuses removing the key in use.
var ErrPrimaryKey = errors.New("mesh: that key is the primary one: make another key primary (use) first")

// RemoveKey removes an installed key other than the primary.
func (m *Mesh) RemoveKey(key []byte) error {
	return m.changeKeys("remove", func(kr *memberlist.Keyring) error {
		switch {
		case !containsKey(kr.GetKeys(), key):
			return ErrUnknownKey
		case bytes.Equal(kr.GetPrimaryKey(), key):
			return ErrPrimaryKey
		}
		return kr.RemoveKey(key)
	})
}

// changeKeys applies op to the keyring and saves the result.
func (m *Mesh) changeKeys(what string, op func(*memberlist.Keyring) error) error {
	if m.keyring == nil {
		return ErrNotEncrypted
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if err := op(m.keyring); err != nil {
		if errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrPrimaryKey) {
			return err
		}
		return fmt.Errorf("mesh: %s key: %w", what, err)
	}
	keys := m.keyring.GetKeys()
	m.log.Info("gossip keyring changed", "operation", what, "primary", KeyFingerprint(keys[0]), "keys", len(keys))
	if m.cfg.KeyringFile == "" {
		return nil
	}
	if err := saveKeyring(m.cfg.KeyringFile, keys); err != nil {
		return fmt.Errorf("mesh: %s key: applied, but not saved (a restart would lose it): %w", what, err)
	}
	return nil
}
