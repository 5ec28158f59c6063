package kafkaconn

import (
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestPlainWithoutTLSIsFlagged(t *testing.T) {
	plain := &SASL{Mechanism: "plain", Username: "u", Password: "p"}
	for _, tc := range []struct {
		name string
		tls  *pipeline.TLSConfig
		sasl *SASL
		want bool
	}{
		{"plain, no tls", nil, plain, true},
		{"plain, tls enabled", &pipeline.TLSConfig{Enabled: true}, plain, false},
		{"plain, tls implied by server_name", &pipeline.TLSConfig{ServerName: "b"}, plain, false},
		{"scram, no tls", nil, &SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}, false},
		{"no sasl", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New([]string{"b:9092"}, tc.tls, tc.sasl)
			if err != nil {
				t.Fatal(err)
			}
			if c.PlainWithoutTLS != tc.want {
				t.Fatalf("PlainWithoutTLS = %v, want %v", c.PlainWithoutTLS, tc.want)
			}
		})
	}
}
