package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/internal/apiclient"
	"github.com/ramd/ramd/internal/testcerts"
)

// tlsServer serves a handler counting its requests over the API's TLS
// configuration for a, on a loopback port.
func tlsServer(t *testing.T, a configs.APIConfig) (addr string, served *atomic.Int64) {
	t.Helper()
	cfg, err := serverTLS(a)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served = new(atomic.Int64)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, `{"success":true,"data":{}}`)
	})}
	// net/http logs failed handshakes; they are what this test provokes.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go serve(srv, ln, cfg)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), served
}

// get asks url with a client using files (TLS at most maxVersion when
// set). With force the client certificate is sent whatever CAs the server
// names (Go's client otherwise sends none the server would not accept).
func get(t *testing.T, files apiclient.TLSFiles, maxVersion uint16, force bool, url string) (int, error) {
	t.Helper()
	c, err := files.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Transport.(*http.Transport).TLSClientConfig
	if maxVersion != 0 {
		tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, maxVersion
	}
	if force {
		cert := tc.Certificates[0]
		tc.Certificates = nil
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusBadRequest && !strings.Contains(string(body), "HTTPS") {
		t.Errorf("400 without the plain-HTTP explanation: %q", body)
	}
	return resp.StatusCode, nil
}

// TestAPITLS: with a CA generated here, the API refuses plain HTTP, TLS
// older than 1.2, clients that do not trust its CA and, when client
// certificates are required, clients without one or with one from
// another CA; the daemon's own peer client (ca_file plus its node
// certificate) gets in.
func TestAPITLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := testcerts.NewCA(dir, "rogue")
	if err != nil {
		t.Fatal(err)
	}
	node, _ := ca.Issue("node1", "127.0.0.1")
	operator, _ := ca.Issue("operator")
	intruder, _ := rogue.Issue("intruder")

	api := configs.APIConfig{SSLEnabled: true, CertFile: node.CertFile, KeyFile: node.KeyFile,
		ClientCAFile: ca.CertFile, VerifyClient: "required", CAFile: ca.CertFile}
	addr, served := tlsServer(t, api)
	url := "https://" + addr + "/api/v1/health"

	// Plain HTTP: a 400 from the TLS layer, the handler never runs.
	resp, err := http.Get("http://" + addr + "/api/v1/health")
	if err != nil {
		t.Fatalf("plain HTTP: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
		t.Errorf("plain HTTP: %d %q, want 400 from the TLS layer", resp.StatusCode, body)
	}

	refused := []struct {
		name  string
		files apiclient.TLSFiles
		max   uint16
		force bool
		want  string
	}{
		{"no CA (system roots)", apiclient.TLSFiles{CertFile: operator.CertFile, KeyFile: operator.KeyFile}, 0, false, "x509: certificate signed by unknown authority"},
		{"no client certificate", apiclient.TLSFiles{CAFile: ca.CertFile}, 0, false, ""},
		{"client certificate of another CA, not sent", apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: intruder.CertFile, KeyFile: intruder.KeyFile}, 0, false, ""},
		{"client certificate of another CA", apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: intruder.CertFile, KeyFile: intruder.KeyFile}, 0, true, ""},
		{"TLS 1.1", apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: operator.CertFile, KeyFile: operator.KeyFile}, tls.VersionTLS11, false, "protocol version"},
	}
	for _, c := range refused {
		code, err := get(t, c.files, c.max, c.force, url)
		// The server's alert races with the client's first write under
		// TLS 1.3 (an alert or a reset): only the client's own checks have
		// a fixed message.
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: status %d, error %v; want a TLS error containing %q", c.name, code, err, c.want)
		}
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("the handler served %d refused requests", n)
	}

	if code, err := get(t, apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: operator.CertFile, KeyFile: operator.KeyFile}, 0, false, url); code != 200 || err != nil {
		t.Errorf("operator certificate: %d %v", code, err)
	}
	peer, err := peerHTTPClient(api)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := peer.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("peer client: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n := served.Load(); n != 2 {
		t.Errorf("served %d requests, want 2", n)
	}

	// optional: no certificate gets in (the token decides), a certificate
	// from another CA does not.
	api.VerifyClient = "optional"
	addr, _ = tlsServer(t, api)
	url = "https://" + addr + "/api/v1/health"
	if code, err := get(t, apiclient.TLSFiles{CAFile: ca.CertFile}, 0, false, url); code != 200 || err != nil {
		t.Errorf("optional, no certificate: %d %v", code, err)
	}
	if code, err := get(t, apiclient.TLSFiles{CAFile: ca.CertFile, CertFile: intruder.CertFile, KeyFile: intruder.KeyFile}, 0, true, url); err == nil {
		t.Errorf("optional, certificate of another CA: %d, want a TLS error", code)
	}
}

// TestServerTLSErrors: bad files stop the daemon with the setting named.
func TestServerTLSErrors(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	node, _ := ca.Issue("node1", "127.0.0.1")
	for _, c := range []struct {
		name string
		a    configs.APIConfig
		want string
	}{
		{"missing cert", configs.APIConfig{SSLEnabled: true, CertFile: dir + "/nope.pem", KeyFile: node.KeyFile, VerifyClient: "none"}, "api.cert_file"},
		{"key as CA", configs.APIConfig{SSLEnabled: true, CertFile: node.CertFile, KeyFile: node.KeyFile, VerifyClient: "required", ClientCAFile: node.KeyFile}, "api.client_ca_file"},
	} {
		if _, err := serverTLS(c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
	if _, err := peerHTTPClient(configs.APIConfig{CAFile: dir + "/nope.pem"}); err == nil || !strings.Contains(err.Error(), "api.ca_file") {
		t.Errorf("missing ca_file: %v", err)
	}
}
