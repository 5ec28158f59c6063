package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig is the `tls:` block components share.
type TLSConfig struct {
	// Enabled turns TLS on with the system roots; setting any other key
	// turns it on too.
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server against these PEM certificates instead of
	// the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate checks that files come in pairs.
func (c *TLSConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return FieldErrorf("cert_file", "cert_file and key_file go together")
	}
	return nil
}

// On reports whether TLS is used: `enabled: true` or any other key set.
// A block that names a CA, a client certificate or a server name means
// TLS; leaving the connection in plaintext (and sending a password over
// it) because `enabled` was forgotten would fail open.
func (c *TLSConfig) On() bool {
	return c != nil && (c.Enabled || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify)
}

// Build returns the crypto/tls config, or nil when TLS is off (see On).
func (c *TLSConfig) Build() (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test-only
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificates in it", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
