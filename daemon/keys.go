package daemon

import (
	"errors"
	"net/http"

	"github.com/ramd/ramd/api"
	"github.com/ramd/ramd/mesh"
)

// keyringFileName is the gossip keyring in the state directory: the keys
// installed by rotations, primary first, kept across restarts (mode 0600).
const keyringFileName = "gossip.keyring"

// GossipKeys implements api.KeyOperator.
func (d *Daemon) GossipKeys() (api.KeyringInfo, error) {
	return d.keyring(nil)
}

// InstallGossipKey implements api.KeyOperator.
func (d *Daemon) InstallGossipKey(key []byte) (api.KeyringInfo, error) {
	return d.keyring(d.mesh.InstallKey(key))
}

// UseGossipKey implements api.KeyOperator.
func (d *Daemon) UseGossipKey(fingerprint string) (api.KeyringInfo, error) {
	key, err := d.mesh.KeyByFingerprint(fingerprint)
	if err == nil {
		err = d.mesh.UseKey(key)
	}
	return d.keyring(err)
}

// RemoveGossipKey implements api.KeyOperator.
func (d *Daemon) RemoveGossipKey(fingerprint string) (api.KeyringInfo, error) {
	key, err := d.mesh.KeyByFingerprint(fingerprint)
	if err == nil {
		err = d.mesh.RemoveKey(key)
	}
	return d.keyring(err)
}

// keyring answers a keyring operation that ended with err: the keyring as
// it now is, or the refusal with its status.
func (d *Daemon) keyring(err error) (api.KeyringInfo, error) {
	info := api.KeyringInfo{NodeID: d.cfg.Cluster.NodeID, Name: d.cfg.Cluster.NodeName, Encrypted: d.mesh.Encrypted(), Keys: []mesh.KeyInfo{}}
	switch {
	case errors.Is(err, mesh.ErrNotEncrypted):
		return info, opErr(http.StatusConflict, "node %d: %v", d.cfg.Cluster.NodeID, err)
	case errors.Is(err, mesh.ErrUnknownKey):
		return info, opErr(http.StatusNotFound, "node %d: no installed key has that fingerprint (install it first; GET /api/v1/keys lists them)", d.cfg.Cluster.NodeID)
	case errors.Is(err, mesh.ErrPrimaryKey):
		return info, opErr(http.StatusConflict, "node %d: that key is the primary one: make another key primary first", d.cfg.Cluster.NodeID)
	case err != nil:
		return info, err
	}
	if info.Encrypted {
		keys, err := d.mesh.Keys()
		if err != nil {
			return info, err
		}
		info.Keys = keys
	}
	return info, nil
}
