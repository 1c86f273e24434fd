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
	st, err := os.Stat(a.AuthTokenFile)
	if err != nil {
		return "", fmt.Errorf("configs: api.auth_token_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("configs: api.auth_token_file %s: mode %04o lets group or others read it; chmod 600", a.AuthTokenFile, st.Mode().Perm())
	}
	b, err := os.ReadFile(a.AuthTokenFile)
	if err != nil {
		return "", fmt.Errorf("configs: api.auth_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("configs: api.auth_token_file %s is empty", a.AuthTokenFile)
	case len(tok) < minTokenLength:
		return "", fmt.Errorf("configs: api.auth_token_file %s: token too short (%d characters, at least %d)", a.AuthTokenFile, len(tok), minTokenLength)
	}
	return tok, nil
}
