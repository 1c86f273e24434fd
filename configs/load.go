package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path and returns the complete, validated
// configuration; see Parse. environ holds KEY=VALUE strings, normally
// os.Environ().
func Load(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("configs: configuration file %s does not exist: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("configs: %w", err)
	}
	return Parse(path, data, environ)
}

// Parse builds a configuration from TOML data: Default, then data decoded
// over it, then the RAMD_* variables of environ (KEY=VALUE strings, as from
// os.Environ()), then FillDerived, then Validate. name labels errors, and
// its directory part anchors relative paths (see the package doc).
//
// Every error is prefixed "configs:". Decoding errors name the file and key
// (and the line where the TOML library knows it); validation errors are all
// reported at once, joined, each naming its key.
func Parse(name string, data []byte, environ []string) (*Config, error) {
	label := name
	if label == "" {
		label = "config"
	}
	cfg := Default()
	if err := decode(label, data, cfg); err != nil {
		return nil, err
	}
	if err := applyEnv(cfg, environ); err != nil {
		return nil, err
	}
	if err := cfg.FillDerived(filepath.Dir(name)); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode decodes data over cfg and rejects unknown keys.
func decode(label string, data []byte, cfg *Config) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		return decodeError(label, data, md, err)
	}
	return unknownKeys(label, md)
}

// decodeError turns an error from toml.Decode into one naming the file and,
// where possible, the key and line.
func decodeError(label string, data []byte, md toml.MetaData, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := strings.TrimPrefix(pe.Message, "configs: ")
		if len(md.Keys()) == 0 {
			// The parser failed before anything was decoded: a syntax error
			// (or a duplicate key, an out-of-range literal...).
			return fmt.Errorf("configs: %s: invalid TOML at line %d, column %d: %s",
				label, pe.Position.Line, pe.Position.Col, msg)
		}
		// A value rejected while decoding (a Duration or Parameters
		// UnmarshalTOML, or an out-of-range number).
		if pe.Position.Line > 0 {
			return fmt.Errorf("configs: %s: line %d: %s: %s", label, pe.Position.Line, pe.LastKey, msg)
		}
		return fmt.Errorf("configs: %s: %s: %s", label, pe.LastKey, msg)
	}

	// The decoder's type mismatch errors are plain strings; find the
	// offending keys ourselves, from the raw document, to name every one
	// clearly.
	var raw map[string]any
	if _, rerr := toml.Decode(string(data), &raw); rerr == nil {
		if probs := typeProblems("", raw, configType); len(probs) > 0 {
			errs := make([]error, len(probs))
			for i, p := range probs {
				errs[i] = fmt.Errorf("configs: %s: %s", label, p)
			}
			return errors.Join(errs...)
		}
	}
	return fmt.Errorf("configs: %s: %w", label, err)
}

// unknownKeys reports every key of the document that is not in the schema,
// in document order, once per unknown table. MetaData.Undecoded is the
// decoder's own list of what it ignored; schemaCheck adds the keys it
// matched case-insensitively, which TOML (case-sensitive) says are different
// keys and which could otherwise shadow the real one.
func unknownKeys(label string, md toml.MetaData) error {
	undecoded := make(map[string]bool)
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	var errs []error
	reported := make(map[string]bool)
	for _, key := range md.Keys() {
		if insideReported(key, reported) {
			continue
		}
		known, hint := schemaCheck(key)
		if known && !undecoded[key.String()] {
			continue
		}
		reported[key.String()] = true
		if hint != "" {
			hint = " (" + hint + ")"
		}
		errs = append(errs, fmt.Errorf("configs: %s: unknown key %q%s", label, key.String(), hint))
	}
	return errors.Join(errs...)
}

// insideReported reports whether key lies inside a table already reported
// as unknown, so that an unknown table gives one error, not one per key.
func insideReported(key toml.Key, reported map[string]bool) bool {
	for i := 1; i < len(key); i++ {
		if reported[key[:i].String()] {
			return true
		}
	}
	return false
}
