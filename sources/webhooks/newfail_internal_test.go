package webhooks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sluicehq/sluice/internal/redisconn"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestNewClosesTheReplayStoresItOpenedWhenItFails: when one provider's
// replay store cannot be built (here: a Redis tls.ca_file that does not
// exist), New fails and closes the Redis stores it had already built for
// the providers before it. A go-redis client runs background goroutines
// from the moment it is built, so each one left open leaked them on every
// failed build or `sluice run --watch` reload.
func TestNewClosesTheReplayStoresItOpenedWhenItFails(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	publicKey := base64.StdEncoding.EncodeToString(der)
	// Port 1: nothing is dialed while building (go-redis dials on the
	// first command), so no server is needed.
	good := func() ReplayConfig {
		return ReplayConfig{ReplayStore: &ReplayStoreConfig{Redis: &RedisReplayStoreConfig{Config: redisconn.Config{Addr: "127.0.0.1:1"}}}}
	}
	broken := func() ReplayConfig {
		rc := good()
		rc.ReplayStore.Redis.TLS = &pipeline.TLSConfig{CAFile: filepath.Join(t.TempDir(), "no-such-ca.pem")}
		return rc
	}
	// The control: a source that was built runs go-redis goroutines
	// until Close, so the count below sees a client left open.
	t.Run("control", func(t *testing.T) {
		s, err := New(pipelinetest.BuildContext(), Config{SendGrid: &SendGridConfig{PublicKey: publicKey, ReplayConfig: good()}})
		if err != nil {
			t.Fatal(err)
		}
		me := goroutineID()
		if n := redisGoroutinesCreatedBy(me); n == 0 {
			t.Fatal("no go-redis goroutine counted while a Redis replay store is open: the count cannot see a leak")
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "Close to stop the go-redis goroutines", func() bool { return redisGoroutinesCreatedBy(me) == 0 },
			func() string { return fmt.Sprintf("%d still run", redisGoroutinesCreatedBy(me)) })
	})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"mailgun's fails after sendgrid's was built", Config{
			SendGrid: &SendGridConfig{PublicKey: publicKey, ReplayConfig: good()},
			Mailgun:  &MailgunConfig{SigningKey: "key-test", ReplayConfig: broken()},
		}},
		{"ses's fails after sendgrid's and mailgun's were built", Config{
			SendGrid: &SendGridConfig{PublicKey: publicKey, ReplayConfig: good()},
			Mailgun:  &MailgunConfig{SigningKey: "key-test", ReplayConfig: good()},
			SES:      &SESConfig{AllowAnyTopic: true, ReplayConfig: broken()},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(pipelinetest.BuildContext(), tc.cfg)
			if err == nil {
				_ = s.Close(t.Context())
				t.Fatal("New succeeded with a replay store whose tls.ca_file does not exist")
			}
			me := goroutineID()
			testwait.For(t, "the close of the Redis clients New built",
				func() bool { return redisGoroutinesCreatedBy(me) == 0 },
				func() string {
					return fmt.Sprintf("New failed (%v); %d go-redis goroutines it started still run", err, redisGoroutinesCreatedBy(me))
				})
		})
	}
}

// goroutineID is the calling goroutine's id, as stack traces print it.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	return string(b[:bytes.IndexByte(b, ' ')])
}

// redisGoroutinesCreatedBy counts the running goroutines that go-redis
// started from goroutine id.
func redisGoroutinesCreatedBy(id string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		i := bytes.Index(g, []byte("\ncreated by github.com/redis/go-redis/"))
		if i < 0 {
			continue
		}
		line := g[i+1:]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		if bytes.HasSuffix(line, []byte(" in goroutine "+id)) {
			count++
		}
	}
	return count
}
