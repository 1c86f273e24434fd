package api

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/ramd/ramd/mesh"
)

// The fake operator's keyring: keys[0] is the primary (nil: plaintext).

func (f *fakeOperator) keyring() KeyringInfo {
	info := KeyringInfo{NodeID: 1, Name: "pg1", Encrypted: f.keys != nil, Keys: []mesh.KeyInfo{}}
	for i, k := range f.keys {
		info.Keys = append(info.Keys, mesh.KeyInfo{Fingerprint: mesh.KeyFingerprint(k), Primary: i == 0})
	}
	return info
}

func (f *fakeOperator) find(fp string) int {
	for i, k := range f.keys {
		if mesh.KeyFingerprint(k) == fp {
			return i
		}
	}
	return -1
}

func (f *fakeOperator) GossipKeys() (KeyringInfo, error) { return f.keyring(), nil }

func (f *fakeOperator) InstallGossipKey(key []byte) (KeyringInfo, error) {
	if f.find(mesh.KeyFingerprint(key)) < 0 {
		f.keys = append(f.keys, key)
	}
	return f.keyring(), nil
}

func (f *fakeOperator) UseGossipKey(fp string) (KeyringInfo, error) {
	i := f.find(fp)
	if i < 0 {
		return KeyringInfo{}, &OpError{Status: http.StatusNotFound, Message: "no installed key has fingerprint " + fp}
	}
	f.keys[0], f.keys[i] = f.keys[i], f.keys[0]
	return f.keyring(), nil
}

func (f *fakeOperator) RemoveGossipKey(fp string) (KeyringInfo, error) {
	switch i := f.find(fp); {
	case i < 0:
		return KeyringInfo{}, &OpError{Status: http.StatusNotFound, Message: "no installed key has fingerprint " + fp}
	case i == 0:
		return KeyringInfo{}, &OpError{Status: http.StatusConflict, Message: "primary"}
	default:
		f.keys = append(f.keys[:i], f.keys[i+1:]...)
	}
	return f.keyring(), nil
}

func TestGossipKeyEndpoints(t *testing.T) {
	key1, key2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	b64 := base64.StdEncoding.EncodeToString
	op := &fakeOperator{keys: [][]byte{key1}}
	var audit bytes.Buffer
	a := newTestAPI(t, 1, primaryHealth(), withOperator(op), func(c *Config, _ *fakeSource) { c.AuditFile = &audit })
	fp1, fp2 := mesh.KeyFingerprint(key1), mesh.KeyFingerprint(key2)

	for _, c := range []struct {
		method, target, body string
		code                 int
	}{
		{"POST", "/api/v1/keys", `{"key":"` + b64(key2) + `"}`, 200},
		{"POST", "/api/v1/keys", `{"key":"` + b64(key2) + `"}`, 200}, // installed already: no-op
		{"POST", "/api/v1/keys", `{"key":"not base64!"}`, 400},
		{"POST", "/api/v1/keys", `{"key":"c2hvcnQ="}`, 400},
		{"POST", "/api/v1/keys", `{}`, 400},
		{"POST", "/api/v1/keys", `{"key":"` + b64(key2) + `","primary":true}`, 400},
		{"POST", "/api/v1/keys", ``, 400},
		{"POST", "/api/v1/keys/" + fp2 + "/use", ``, 200},
		{"POST", "/api/v1/keys/0123456789abcdef/use", ``, 404},
		{"POST", "/api/v1/keys/" + b64(key1)[:16] + "/use", ``, 400},
		{"POST", "/api/v1/keys/" + fp1 + "/use", `{"x":1}`, 400},
		{"DELETE", "/api/v1/keys/" + fp2, ``, 409},
		{"DELETE", "/api/v1/keys/" + fp1, ``, 200},
		{"DELETE", "/api/v1/keys/" + fp1, ``, 404},
		{"DELETE", "/api/v1/keys/UPPER0123456789A", ``, 400},
		{"GET", "/api/v1/keys", ``, 200},
	} {
		rec := a.send(c.method, c.target, c.body)
		if rec.Code != c.code {
			t.Errorf("%s %s %s: %d, want %d: %s", c.method, c.target, c.body, rec.Code, c.code, rec.Body)
		}
	}
	if len(op.keys) != 1 || !bytes.Equal(op.keys[0], key2) {
		t.Fatalf("keyring after the calls: %x", op.keys)
	}
	// Reads are open to the read token and show fingerprints only.
	rec := a.sendAs(testReadToken, "GET", "/api/v1/keys", "")
	env := envelopeOf(t, rec)
	info := decodeData[KeyringInfo](t, env)
	if rec.Code != 200 || !info.Encrypted || len(info.Keys) != 1 || info.Keys[0].Fingerprint != fp2 || !info.Keys[0].Primary {
		t.Fatalf("GET /keys with the read token: %d %+v", rec.Code, info)
	}
	if rec := a.sendAs(testReadToken, "POST", "/api/v1/keys", `{"key":"`+b64(key1)+`"}`); rec.Code != http.StatusForbidden {
		t.Fatalf("install with the read token: %d", rec.Code)
	}
	for _, secret := range []string{b64(key1), b64(key2)} {
		for what, text := range map[string]string{"GET answer": rec.Body.String(), "audit file": audit.String(), "logs": a.logs.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s holds a key", what)
			}
		}
	}
	if n := strings.Count(audit.String(), "/api/v1/keys"); n < 15 {
		t.Errorf("%d audited key requests, want every mutating one:\n%s", n, audit.String())
	}
}

func FuzzInstallKeyBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/keys",
		[]string{`{"key":"AQEBAQEBAQEBAQEBAQEBAQ=="}`, `{"key":""}`, `{"key":null}`, `{"key":1}`, `{"key":"===="}`},
		func(t *testing.T, op *fakeOperator, code int) {
			if code == http.StatusNotImplemented {
				t.Fatal("501 from install")
			}
			for _, k := range op.keys {
				if n := len(k); n != 16 && n != 24 && n != 32 {
					t.Fatalf("a %d-byte key reached the operator", n)
				}
			}
		})
}
