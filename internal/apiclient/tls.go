package apiclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// TLSFiles names the PEM files a client uses for an https API: the CAs it
// trusts (empty: the system's roots) and an optional client certificate
// for APIs that verify clients ([api] verify_client).
type TLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Config builds the client's TLS configuration (TLS 1.2 or newer, as the
// server requires). Errors name the file at fault.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pool, err := LoadCertPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("apiclient: client certificate %s / key %s: %w", f.CertFile, f.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("apiclient: a client certificate needs both the certificate and its key")
	}
	return cfg, nil
}

// HTTPClient is an HTTP client using Config, with the default
// transport's proxy, pooling and timeouts otherwise. Requests carry their
// own deadlines (Client.Timeout, contexts).
func (f TLSFiles) HTTPClient() (*http.Client, error) {
	cfg, err := f.Config()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}

// LoadCertPool reads a PEM bundle of CA certificates; a file without any
// certificate is an error.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apiclient: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("apiclient: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}
