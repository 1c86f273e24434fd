package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"

	"github.com/gorilla/mux"

	"github.com/ramd/ramd/mesh"
)

// KeyOperator serves the gossip keyring endpoints (this node's keyring
// only: ramctl keys applies a change to every member in turn). A Source
// that does not implement it answers them with 501.
//
// Keys are listed by fingerprint, never by value: GET is open to the read
// token, and a gossip key lets its holder join the mesh and vote. The key
// itself travels only in the body of an install (admin token), never in a
// URL, which the audit log records.
type KeyOperator interface {
	// GossipKeys lists the installed keys, the primary first.
	GossipKeys() (KeyringInfo, error)
	// InstallGossipKey adds a key (no-op when installed).
	InstallGossipKey(key []byte) (KeyringInfo, error)
	// UseGossipKey makes the installed key with that fingerprint primary.
	UseGossipKey(fingerprint string) (KeyringInfo, error)
	// RemoveGossipKey removes the installed key with that fingerprint; the
	// primary key cannot be removed.
	RemoveGossipKey(fingerprint string) (KeyringInfo, error)
}

// KeyringInfo is one node's gossip keyring.
type KeyringInfo struct {
	NodeID    int            `json:"node_id"`
	Name      string         `json:"name"`
	Encrypted bool           `json:"encrypted"`
	Keys      []mesh.KeyInfo `json:"keys"`
}

// fingerprintRE matches mesh.KeyFingerprint.
var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

func (s *server) keyRoutes(v1 *mux.Router) {
	s.methods(v1, "/api/v1", "/keys", map[string]http.HandlerFunc{
		http.MethodGet: s.handleKeys, http.MethodPost: s.handleInstallKey})
	s.methods(v1, "/api/v1", "/keys/{fingerprint}/use", map[string]http.HandlerFunc{http.MethodPost: s.handleUseKey})
	s.methods(v1, "/api/v1", "/keys/{fingerprint}", map[string]http.HandlerFunc{http.MethodDelete: s.handleRemoveKey})
}

func (s *server) keyOperator(w http.ResponseWriter, r *http.Request) (KeyOperator, bool) {
	op, ok := s.src.(KeyOperator)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, "this node cannot manage gossip keys")
	}
	return op, ok
}

func (s *server) handleKeys(w http.ResponseWriter, r *http.Request) {
	op, ok := s.keyOperator(w, r)
	if !ok {
		return
	}
	info, err := op.GossipKeys()
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "")
}

type installKeyRequest struct {
	Key *string `json:"key"`
}

func (s *server) handleInstallKey(w http.ResponseWriter, r *http.Request) {
	op, ok := s.keyOperator(w, r)
	if !ok {
		return
	}
	var req installKeyRequest
	if !s.decodeBody(w, r, &req, false) {
		return
	}
	if req.Key == nil {
		s.writeError(w, r, http.StatusBadRequest, "key: required (a base64 AES key of 16, 24 or 32 bytes, from ramd keygen)")
		return
	}
	key, err := base64.StdEncoding.DecodeString(*req.Key)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, "key: not valid base64")
		return
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		s.writeError(w, r, http.StatusBadRequest, "key: decodes to %d bytes; AES needs 16, 24 or 32", n)
		return
	}
	info, err := op.InstallGossipKey(key)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, fmt.Sprintf("key %s installed", mesh.KeyFingerprint(key)))
}

// fingerprint reads and checks the {fingerprint} path variable.
func (s *server) fingerprint(w http.ResponseWriter, r *http.Request) (string, bool) {
	fp := mux.Vars(r)["fingerprint"]
	if !fingerprintRE.MatchString(fp) {
		s.writeError(w, r, http.StatusBadRequest, "fingerprint %.64q: must be 16 lowercase hex digits (GET /api/v1/keys lists them)", fp)
		return "", false
	}
	return fp, true
}

func (s *server) handleUseKey(w http.ResponseWriter, r *http.Request) {
	op, ok := s.keyOperator(w, r)
	if !ok {
		return
	}
	fp, ok := s.fingerprint(w, r)
	if !ok || !s.decodeBody(w, r, &struct{}{}, true) {
		return
	}
	info, err := op.UseGossipKey(fp)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "key "+fp+" is now the primary key")
}

func (s *server) handleRemoveKey(w http.ResponseWriter, r *http.Request) {
	op, ok := s.keyOperator(w, r)
	if !ok {
		return
	}
	fp, ok := s.fingerprint(w, r)
	if !ok || !s.decodeBody(w, r, &struct{}{}, true) {
		return
	}
	info, err := op.RemoveGossipKey(fp)
	if err != nil {
		s.writeOpError(w, r, err)
		return
	}
	s.writeEnvelope(w, r, http.StatusOK, info, "key "+fp+" removed")
}
