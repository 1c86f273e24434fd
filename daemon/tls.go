package daemon

import (
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/ramd/ramd/configs"
	"github.com/ramd/ramd/internal/apiclient"
)

// serverTLS is the API's TLS configuration, built in New so that a bad
// certificate, key or CA file stops the daemon before it joins anything:
// TLS 1.2 or newer, and client certificates as [api] verify_client says.
// nil when ssl_enabled is off.
func serverTLS(a configs.APIConfig) (*tls.Config, error) {
	if !a.SSLEnabled {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.CertFile, a.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("daemon: api.cert_file %s / api.key_file %s: %w", a.CertFile, a.KeyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	switch a.VerifyClient {
	case "required", "optional":
		pool, err := apiclient.LoadCertPool(a.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("daemon: api.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if a.VerifyClient == "optional" {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, nil
}

// peerHTTPClient carries this daemon's requests to other nodes' APIs:
// https trusting [api] ca_file (the system's roots when unset), with this
// node's certificate as client certificate when TLS is on, so that peers
// verifying clients accept it. Every request has its own context deadline
// (downloads have none: they last as long as the copy).
func peerHTTPClient(a configs.APIConfig) (*http.Client, error) {
	files := apiclient.TLSFiles{CAFile: a.CAFile}
	if a.SSLEnabled {
		files.CertFile, files.KeyFile = a.CertFile, a.KeyFile
	}
	c, err := files.HTTPClient()
	if err != nil {
		return nil, fmt.Errorf("daemon: api.ca_file: %w", err)
	}
	return c, nil
}
