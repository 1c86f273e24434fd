package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// identity is what a node records once it belongs to a cluster, so that a
// restart can tell its own data directory from a foreign one.
type identity struct {
	ClusterName string `json:"cluster_name"`
	NodeID      int    `json:"node_id"`
	SystemID    uint64 `json:"system_id,string"`
}

const identityFile = "cluster.json"

func loadIdentity(stateDir string) (identity, error) {
	var id identity
	b, err := os.ReadFile(filepath.Join(stateDir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("daemon: read identity: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("daemon: %s is corrupt (%v); move it aside if this node should re-adopt its data directory", filepath.Join(stateDir, identityFile), err)
	}
	return id, nil
}

// saveIdentity writes the identity atomically (temp file, fsync, rename),
// so a crash leaves either the old or the new file.
func saveIdentity(stateDir string, id identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("daemon: encode identity: %w", err)
	}
	return writeFileAtomic(filepath.Join(stateDir, identityFile), append(b, '\n'), 0o644)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("daemon: fsync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("daemon: write %s: %w", path, err)
	}
	// The rename is durable only once the directory is.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("daemon: fsync the directory of %s: %w", path, err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("daemon: fsync the directory of %s: %w", path, err)
	}
	return nil
}
