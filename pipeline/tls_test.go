package pipeline_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// Item 8 of issue 15: any TLS key set means TLS; a `tls:` block that names
// a CA or a server name never quietly leaves the connection in plaintext.
func TestTLSKeysImplyTLS(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *pipeline.TLSConfig
		tls  bool
		err  bool
	}{
		{"absent", nil, false, false},
		{"empty", &pipeline.TLSConfig{}, false, false},
		{"enabled", &pipeline.TLSConfig{Enabled: true}, true, false},
		{"server_name only", &pipeline.TLSConfig{ServerName: "redis.internal"}, true, false},
		{"insecure_skip_verify only", &pipeline.TLSConfig{InsecureSkipVerify: true}, true, false},
		{"ca_file only (bad file: must be read, not ignored)", &pipeline.TLSConfig{CAFile: ca}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.Build()
			if (err != nil) != tc.err {
				t.Fatalf("Build error = %v, want error %v", err, tc.err)
			}
			if (got != nil) != tc.tls {
				t.Fatalf("Build TLS = %v, want %v", got != nil, tc.tls)
			}
		})
	}
}
