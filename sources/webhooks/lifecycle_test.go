package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// newSource builds and starts a source with no runner reading it.
func newSource(t *testing.T, ackTimeout time.Duration, adjust ...func(*webhooks.Config)) (*webhooks.Source, string) {
	t.Helper()
	cfg := webhooks.Config{}
	cfg.SetDefaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.QueueSize = 1
	cfg.AckTimeout = pipeline.Duration(ackTimeout)
	cfg.Mailgun = &webhooks.MailgunConfig{SigningKey: mailgunKey}
	for _, f := range adjust {
		f(&cfg)
	}
	s, err := webhooks.New(pipelinetest.BuildContext(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, "http://" + s.Addr().String() + "/webhooks/mailgun"
}

func postAsync(url string, body []byte) <-chan int {
	out := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			out <- -1
			return
		}
		resp.Body.Close()
		out <- resp.StatusCode
	}()
	return out
}

func waitQueued(t *testing.T, s *webhooks.Source, n int) {
	t.Helper()
	testwait.ForEvery(t, time.Millisecond, fmt.Sprintf("%d requests queued", n), func() bool { return s.Queued() == n },
		func() string { return fmt.Sprintf("queued %d", s.Queued()) })
}

// A request nobody takes within ack_timeout is answered 503 and withdrawn:
// a later Read does not hand its events to the pipeline.
func TestNotTakenWithinAckTimeout(t *testing.T) {
	s, url := newSource(t, 200*time.Millisecond)
	got := <-postAsync(url, mailgunBody(mailgunKey, "tok-q", time.Now(), "mg-q", "delivered", "a@b.c"))
	if got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if evs, _, err := s.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read returned %d events of an answered request (err %v)", len(evs), err)
	}
}

// The ack decides the answer: nil → 200, an error → 503.
func TestAckDecidesStatus(t *testing.T) {
	for _, tc := range []struct {
		ack    error
		status int
	}{{nil, 200}, {pipeline.ErrAbandoned, 503}, {errors.New("sink failed"), 503}} {
		s, url := newSource(t, 5*time.Second)
		res := postAsync(url, mailgunBody(mailgunKey, "tok-a", time.Now(), "mg-a", "delivered", "a@b.c"))
		evs, ack, err := s.Read(context.Background())
		if err != nil || len(evs) != 1 || evs[0].ID != "mailgun:mg-a" {
			t.Fatalf("Read: %v, %d events", err, len(evs))
		}
		ack(tc.ack)
		if got := <-res; got != tc.status {
			t.Errorf("ack(%v): status %d, want %d", tc.ack, got, tc.status)
		}
	}
}

// Close answers requests still queued with 503, not ack_timeout: the
// timeout is far beyond the test's hang bound, so only Close can answer.
func TestCloseAnswersPending(t *testing.T) {
	s, url := newSource(t, 2*testwait.Bound())
	res := postAsync(url, mailgunBody(mailgunKey, "tok-c", time.Now(), "mg-c", "delivered", "a@b.c"))
	waitQueued(t, s, 1)
	start := time.Now()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-res; got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	if took := time.Since(start); took >= 2*testwait.Bound() {
		t.Errorf("answered after %v: by ack_timeout, not by Close", took)
	}
}

// When the runner stops reading (shutdown), waiting requests are answered
// 503 at once and new ones are refused.
func TestStoppedReadingAnswers503(t *testing.T) {
	s, url := newSource(t, 30*time.Second)
	res := postAsync(url, mailgunBody(mailgunKey, "tok-s", time.Now(), "mg-s", "delivered", "a@b.c"))
	waitQueued(t, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read: %v", err)
	}
	if got := <-res; got != http.StatusServiceUnavailable {
		t.Fatalf("queued request: status %d, want 503", got)
	}
	if got := <-postAsync(url, mailgunBody(mailgunKey, "tok-s2", time.Now(), "mg-s2", "delivered", "a@b.c")); got != http.StatusServiceUnavailable {
		t.Fatalf("new request: status %d, want 503", got)
	}
	if err := s.Ready(); err == nil {
		t.Error("Ready() = nil after the runner stopped reading")
	}
}

// A taken port fails the run at Start.
func TestPortTakenFailsRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reg := pipeline.NewRegistry()
	webhooks.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
	doc := "name: x\nsource:\n  webhooks: {listen: \"" + ln.Addr().String() + "\", mailgun: {signing_key: k}}\nsinks: [{mem: {index: 0}}]\n"
	cfg, err := pipeline.Load("x.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Run = %v, want a listen error", err)
	}
}

func TestConfigValidation(t *testing.T) {
	reg := pipeline.NewRegistry()
	webhooks.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
	for _, tc := range []struct {
		name, source, want string
	}{
		{"no provider", `{listen: ":8080"}`, "source.webhooks.sendgrid: enable at least one provider"},
		{"no listen", `{mailgun: {signing_key: k}}`, "source.webhooks.listen: required field is missing"},
		{"bad listen", `{listen: "8080", mailgun: {signing_key: k}}`, "source.webhooks.listen: must be host:port"},
		{"bad prefix", `{listen: ":1", path_prefix: "hooks/", mailgun: {signing_key: k}}`, "source.webhooks.path_prefix: must start with /"},
		{"bad sendgrid key", `{listen: ":1", sendgrid: {public_key: "bm90IGEga2V5"}}`, "source.webhooks.sendgrid.public_key: not a PKIX public key"},
		{"missing signing key", `{listen: ":1", mailgun: {}}`, "source.webhooks.mailgun.signing_key: required field is missing"},
		{"bad region", `{listen: ":1", ses: {regions: [useast1]}}`, "source.webhooks.ses.regions[0]: \"useast1\" is not an AWS region"},
		{"bad topic arn", `{listen: ":1", ses: {topic_arns: ["arn:aws:sqs:us-east-1:1:q"]}}`, "source.webhooks.ses.topic_arns[0]: "},
		{"bad account", `{listen: ":1", account_id: "a b", mailgun: {signing_key: k}}`, "source.webhooks.account_id: must be"},
		{"zero ack timeout", `{listen: ":1", ack_timeout: 0, mailgun: {signing_key: k}}`, "source.webhooks.ack_timeout: must be more than 0"},
		{"replay store without redis", `{listen: ":1", mailgun: {signing_key: k, replay_store: {}}}`, "source.webhooks.mailgun.replay_store.redis: is required"},
		{"redis without addr", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {prefix: p}}}}`, "source.webhooks.mailgun.replay_store.redis.addr: is required"},
		{"redis addr without port", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {addr: redis}}}}`, "source.webhooks.mailgun.replay_store.redis.addr: must be host:port"},
		{"redis negative timeout", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {addr: "redis:6379", timeout: -1s}}}}`, `source.webhooks.mailgun.replay_store.redis.timeout: "-1s" is negative`},
		{"redis negative db", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {addr: "redis:6379", db: -1}}}}`, "source.webhooks.mailgun.replay_store.redis.db: must be 0 or more"},
		{"redis tls half a pair", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {addr: "redis:6379", tls: {enabled: true, cert_file: c.pem}}}}}`, "source.webhooks.mailgun.replay_store.redis.tls.cert_file: cert_file and key_file go together"},
		{"redis unknown key", `{listen: ":1", mailgun: {signing_key: k, replay_store: {redis: {addr: "redis:6379", pasword: x}}}}`, "source.webhooks.mailgun.replay_store.redis.pasword: unknown field"},
		{"ses without a topic rule", `{listen: ":1", ses: {regions: [us-east-1]}}`, "source.webhooks.ses.topic_arns: is required"},
		{"ses any topic and a list", `{listen: ":1", ses: {allow_any_topic: true, topic_arns: ["arn:aws:sns:us-east-1:1:t"]}}`, "source.webhooks.ses.allow_any_topic: contradicts topic_arns"},
		{"ses account without topics", `{listen: ":1", ses: {account_topics: {acct_1: []}}}`, "source.webhooks.ses.account_topics.acct_1: list the account's topic ARNs"},
		{"ses account bad topic", `{listen: ":1", ses: {account_topics: {acct_1: ["arn:aws:sqs:us-east-1:1:q"]}}}`, "source.webhooks.ses.account_topics.acct_1[0]: "},
		{"sendgrid negative max_age", `{listen: ":1", sendgrid: {public_key: "${SG}", max_age: -1m}}`, `source.webhooks.sendgrid.max_age: "-1m" is negative`},
		{"sendgrid without any key", `{listen: ":1", sendgrid: {}}`, "source.webhooks.sendgrid.public_key: required field is missing"},
		{"sendgrid bad account key", `{listen: ":1", sendgrid: {account_keys: {acct_1: "bm90IGEga2V5"}}}`, "source.webhooks.sendgrid.account_keys.acct_1: not a PKIX public key"},
		{"account_id ..", `{listen: ":1", account_id: "..", mailgun: {signing_key: k}}`, "source.webhooks.account_id: must be"},
		{"accounts ...", `{listen: ":1", accounts: ["..."], mailgun: {signing_key: k}}`, "source.webhooks.accounts[0]: must be"},
		{"account key ..", `{listen: ":1", mailgun: {account_keys: {"..": k}}}`, `source.webhooks.mailgun.account_keys...: account ".."`},
		{"account topics .", `{listen: ":1", ses: {account_topics: {".": ["arn:aws:sns:us-east-1:1:t"]}}}`, `source.webhooks.ses.account_topics..: account "."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: x\nsource:\n  webhooks: " + tc.source + "\nsinks: [{mem: {index: 0}}]\n"
			_, err := pipeline.Load("x.yaml", []byte(doc), reg, func(k string) (string, bool) { return sendgridPublicKey(t, sendgridKey()), k == "SG" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// And a full valid one, PEM key included.
	pemKey := "-----BEGIN PUBLIC KEY-----\n" + sendgridPublicKey(t, sendgridKey()) + "\n-----END PUBLIC KEY-----"
	doc := "name: x\nsource:\n  webhooks:\n    listen: \":8080\"\n    sendgrid: {public_key: \"" + strings.ReplaceAll(pemKey, "\n", "\\n") + "\"}\n    ses: {regions: [us-east-1, eu-west-1], topic_arns: [\"arn:aws:sns:us-east-1:1:t\"]}\nsinks: [{mem: {index: 0}}]\n"
	cfg, err := pipeline.Load("x.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// Freshness and replay checks are on by default, with each provider's
	// window, and nothing warns.
	wc := cfg.Source.Config.(*webhooks.Config)
	if wc.SendGrid.MaxAge.D() != 10*time.Minute || wc.SendGrid.RetryWindow.D() != 25*time.Hour || wc.SES.MaxAge.D() != 90*time.Minute || wc.SES.RetryWindow.D() != 2*time.Hour {
		t.Fatalf("defaults: sendgrid %+v, ses %+v", wc.SendGrid.ReplayConfig, wc.SES.ReplayConfig)
	}
	if len(cfg.Warnings) != 0 {
		t.Fatalf("warnings %v", cfg.Warnings)
	}
	// allow_any_topic loads, with a warning at its line.
	doc = "name: x\nsource:\n  webhooks:\n    listen: \":8080\"\n    ses:\n      allow_any_topic: true\nsinks: [{mem: {index: 0}}]\n"
	if cfg, err = pipeline.Load("x.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0].Error(), "x.yaml:6: source.webhooks.ses.allow_any_topic: any AWS account's SNS topic is accepted") {
		t.Fatalf("warnings %v, want one at x.yaml:6 for allow_any_topic", cfg.Warnings)
	}
	// A replay store is checked, not dialled: nothing listens on :1.
	doc = "name: x\nsource:\n  webhooks:\n    listen: \":8080\"\n    mailgun:\n      signing_key: k\n      replay_store: {redis: {addr: \"127.0.0.1:1\", username: u, password: p, db: 2, tls: {enabled: true}}}\nsinks: [{mem: {index: 0}}]\n"
	if cfg, err = pipeline.Load("x.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if r := cfg.Source.Config.(*webhooks.Config).Mailgun.ReplayStore.Redis; r.Prefix != "sluice:mailgun:" || r.Timeout.D() != time.Second || r.DB != 2 {
		t.Fatalf("redis replay store %+v, want the default prefix and timeout", r)
	}
}

// The example pipeline passes validation with the webhooks source and the
// kafka sink, and carries no secret literally.
func TestExamplePipeline(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "email-webhooks-to-kafka.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := pipeline.NewRegistry()
	webhooks.Register(reg)
	kafkasink.Register(reg)
	env := map[string]string{
		"SENDGRID_WEBHOOK_PUBLIC_KEY": sendgridPublicKey(t, sendgridKey()),
		"MAILGUN_WEBHOOK_SIGNING_KEY": mailgunKey,
		"SES_TOPIC_ARN":               testTopic,
	}
	cfg, err := pipeline.Load(path, data, reg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Name != "webhooks" || len(cfg.Sinks) == 0 || cfg.Sinks[0].Name != "kafka" {
		t.Fatalf("source %q, sinks %+v", cfg.Source.Name, cfg.Sinks)
	}
	// Without the secrets set, validation must say so rather than run keyless.
	if _, err := pipeline.Load(path, data, reg, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "SENDGRID_WEBHOOK_PUBLIC_KEY") {
		t.Fatalf("Load without env = %v", err)
	}
}

// One request more than max_concurrent is answered 503 at once.
func TestMaxConcurrent(t *testing.T) {
	s, url := newSource(t, 2*testwait.Bound(), func(c *webhooks.Config) { c.MaxConcurrent = 1 })
	first := postAsync(url, mailgunBody(mailgunKey, "tok-m1", time.Now(), "mg-m1", "delivered", "a@b.c"))
	waitQueued(t, s, 1)
	start := time.Now()
	if got := <-postAsync(url, mailgunBody(mailgunKey, "tok-m2", time.Now(), "mg-m2", "delivered", "a@b.c")); got != http.StatusServiceUnavailable {
		t.Fatalf("second request: status %d, want 503", got)
	}
	if took := time.Since(start); took >= 2*testwait.Bound() {
		t.Errorf("second request answered after %v: by ack_timeout, not at once", took)
	}
	evs, ack, err := s.Read(context.Background())
	if err != nil || len(evs) != 1 || evs[0].ID != "mailgun:mg-m1" {
		t.Fatalf("Read: %v %d", err, len(evs))
	}
	ack(nil)
	if got := <-first; got != 200 {
		t.Fatalf("first request: status %d", got)
	}
}
