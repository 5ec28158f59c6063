package redisconn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/redisconn"
	"github.com/sluicehq/sluice/pipeline"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    redisconn.Config
		want []string // fields with errors
	}{
		{"ok", redisconn.Config{Addr: "127.0.0.1:6379", Timeout: pipeline.Duration(time.Second)}, nil},
		{"no addr", redisconn.Config{Timeout: pipeline.Duration(time.Second)}, []string{"redis.addr"}},
		{"no port", redisconn.Config{Addr: "redis", Timeout: pipeline.Duration(time.Second)}, []string{"redis.addr"}},
		{"negative db, no timeout", redisconn.Config{Addr: "redis:6379", DB: -1}, []string{"redis.db", "redis.timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, err := range tc.c.Check("redis.") {
				fe, ok := errors.AsType[*pipeline.FieldError](err)
				if !ok {
					t.Fatalf("%v is not a FieldError", err)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("errors on %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	c := redisconn.Config{Addr: "h:6379", Username: "u", Password: "p", DB: 3, Timeout: pipeline.Duration(2 * time.Second)}
	o, err := redisconn.Options(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "h:6379" || o.Username != "u" || o.Password != "p" || o.DB != 3 || o.ReadTimeout != 2*time.Second || o.WriteTimeout != 2*time.Second || o.TLSConfig != nil {
		t.Fatalf("options %+v", o)
	}
	o, err = redisconn.Options(c, &pipeline.TLSConfig{Enabled: true, ServerName: "redis.internal"})
	if err != nil || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" {
		t.Fatalf("tls options %+v, %v", o.TLSConfig, err)
	}
	if _, err := redisconn.Options(c, &pipeline.TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "h:6379") {
		t.Fatalf("missing ca_file: %v, want an error naming the server", err)
	}
}

// Issue 15 item 8: a tls block without `enabled: true` still means TLS, so
// AUTH never goes out in plaintext because a key was forgotten.
func TestTLSBlockWithoutEnabledStillUsesTLS(t *testing.T) {
	o, err := redisconn.Options(redisconn.Config{Addr: "h:6379", Password: "pw"}, &pipeline.TLSConfig{ServerName: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "h" {
		t.Fatalf("TLSConfig = %+v, want TLS with server name h", o.TLSConfig)
	}
}
