package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
)

// cmdKeygen prints a new gossip encryption key: 32 random bytes (AES-256)
// in base64, for [mesh] encrypt_key, encrypt_key_file or ramctl keys
// install.
func cmdKeygen(args []string, out io.Writer) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("keygen takes no arguments (got %q)", args[0])}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err := fmt.Fprintln(out, base64.StdEncoding.EncodeToString(key))
	return err
}
