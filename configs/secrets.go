package configs

import (
	"fmt"
	"os"
	"strings"
)

// AdminToken is the API's admin token: auth_token, or the contents of
// auth_token_file (surrounding whitespace trimmed). A file that cannot be
// read, is empty, or that group or others may read is an error naming it:
// a token anyone on the host can read protects nothing.
func (a APIConfig) AdminToken() (string, error) {
	if a.AuthTokenFile == "" {
		return a.AuthToken, nil
	}
	tok, err := readSecretFile("api.auth_token_file", a.AuthTokenFile)
	if err != nil {
		return "", err
	}
	if len(tok) < minTokenLength {
		return "", fmt.Errorf("configs: api.auth_token_file %s: token too short (%d characters, at least %d)", a.AuthTokenFile, len(tok), minTokenLength)
	}
	return tok, nil
}

// MeshKey is the gossip encryption key: mesh.encrypt_key, or the contents
// of mesh.encrypt_key_file (same rules as auth_token_file), decoded; nil
// when neither is set. Errors name the key or the file, never the key's
// text.
func (c *Config) MeshKey() ([]byte, error) {
	if c.Mesh.EncryptKeyFile == "" {
		return c.EncryptKeyBytes()
	}
	text, err := readSecretFile("mesh.encrypt_key_file", c.Mesh.EncryptKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := DecodeGossipKey(text)
	if err != nil {
		return nil, fmt.Errorf("configs: mesh.encrypt_key_file %s: %w", c.Mesh.EncryptKeyFile, err)
	}
	return key, nil
}

// readSecretFile reads a file holding one secret, refusing one that
// group or others may read (chmod 600) or that is empty.
func readSecretFile(key, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("configs: %s: %w", key, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("configs: %s %s: mode %04o lets group or others read it; chmod 600", key, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("configs: %s: %w", key, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("configs: %s %s is empty", key, path)
	}
	return s, nil
}
