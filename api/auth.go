package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// AuthConfig says who may do what. Mutating requests (any method but GET,
// HEAD and OPTIONS) need AdminToken, and are refused when it is empty:
// the API is never open for changes by default. Once either token is set,
// read requests need one of them, except the load-balancer checks while
// PublicHealthChecks holds.
type AuthConfig struct {
	AdminToken         string
	ReadToken          string
	PublicHealthChecks bool
}

// access is what a request's credentials allow.
type access int

const (
	accessNone access = iota
	accessRead
	accessAdmin
)

// allow checks the request's credentials for an endpoint that needs need
// (public: a load-balancer check). It answers the refusal itself and
// returns false when the request may not proceed. Tokens are compared in
// constant time over their SHA-256 digests, so neither content nor length
// leaks through timing. It runs after the method dispatch, so a wrong
// method is a 405 whatever the credentials.
func (s *server) allow(w http.ResponseWriter, r *http.Request, need access, public bool) bool {
	admin, read := s.adminDigest, s.readDigest
	switch {
	case need == accessRead && public && s.auth.PublicHealthChecks:
		return true
	case need == accessRead && admin == nil && read == nil:
		return true
	case need == accessAdmin && admin == nil:
		s.writeError(w, r, http.StatusForbidden, "changes through the API are disabled: set [api] auth_token (or auth_token_file) on the nodes to enable them")
		return false
	}
	got := s.identify(r)
	switch {
	case got == accessNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="ramd"`)
		s.writeError(w, r, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
		return false
	case got < need:
		s.writeError(w, r, http.StatusForbidden, "the read token cannot change anything: use the admin token ([api] auth_token)")
		return false
	}
	return true
}

// identify says which token the request presents: admin, read, or none
// (no token, or a wrong one).
func (s *server) identify(r *http.Request) access {
	tok, ok := bearer(r)
	if !ok {
		return accessNone
	}
	d := digest(tok)
	switch {
	case s.adminDigest != nil && subtle.ConstantTimeCompare(d, s.adminDigest) == 1:
		return accessAdmin
	case s.readDigest != nil && subtle.ConstantTimeCompare(d, s.readDigest) == 1:
		return accessRead
	}
	return accessNone
}

// String names the access level as the audit log records it.
func (a access) String() string {
	switch a {
	case accessAdmin:
		return "admin"
	case accessRead:
		return "read"
	}
	return "none"
}

func digest(tok string) []byte {
	if tok == "" {
		return nil
	}
	d := sha256.Sum256([]byte(tok))
	return d[:]
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
