package webhooks_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// The example pipeline, run as written against an in-process Kafka: a
// signed SendGrid request is answered 200 only once its events are records
// keyed by recipient whose value is the envelope.
func TestExampleEndToEndIntoKafka(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(4, "email.events"))
	path := filepath.Join("..", "..", "examples", "email-webhooks-to-kafka.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	built := make(chan *webhooks.Source, 1)
	reg := pipeline.NewRegistry()
	pipeline.RegisterSource(reg, "webhooks", "test", func(bc pipeline.BuildContext, c *webhooks.Config) (pipeline.Source, error) {
		s, err := webhooks.New(bc, *c)
		if err == nil {
			built <- s
		}
		return s, err
	})
	kafkasink.Register(reg)
	env := map[string]string{
		"SLUICE_WEBHOOKS_LISTEN":      "127.0.0.1:0",
		"SLUICE_KAFKA_BROKERS":        brokers[0],
		"SENDGRID_WEBHOOK_PUBLIC_KEY": sendgridPublicKey(t, sendgridKey()),
		"MAILGUN_WEBHOOK_SIGNING_KEY": mailgunKey,
		"SES_TOPIC_ARN":               testTopic,
	}
	cfg, err := pipeline.Load(path, data, reg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	src := <-built
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.ForEvery(t, 2*time.Millisecond, "the webhook server to listen", func() bool { return src.Addr() != nil }, nil)
	h := &harness{base: "http://" + src.Addr().String()}
	now := time.Now().Unix()
	body := []byte(`[{"email":"ada@example.com","timestamp":` + strconv.FormatInt(now, 10) + `,"event":"open","sg_event_id":"e2e-1"},` +
		`{"email":"grace@example.com","timestamp":` + strconv.FormatInt(now, 10) + `,"event":"click","sg_event_id":"e2e-2"}]`)
	ts := strconv.FormatInt(now, 10)
	if got := h.post(t, "/webhooks/sendgrid/acct_9", body, map[string]string{
		"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, sendgridKey(), ts, body),
		"X-Twilio-Email-Event-Webhook-Timestamp": ts,
	}); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	// 200 means written: the records are there now.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("email.events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]envelope{}
	rctx, rcancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer rcancel()
	for len(got) < 2 && rctx.Err() == nil {
		cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			var e envelope
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatalf("record value: %v", err)
			}
			if string(r.Key) != e.Key {
				t.Errorf("record key %q, envelope key %q", r.Key, e.Key)
			}
			got[e.ID] = e
		})
	}
	if len(got) != 2 || got["sendgrid:e2e-1"].Key != "ada@example.com" || got["sendgrid:e2e-2"].Type != "click" || got["sendgrid:e2e-1"].AccountID != "acct_9" {
		t.Fatalf("records %+v", got)
	}
}
