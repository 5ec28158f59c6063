package webhooks_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// Two replicas behind a load balancer, each its own pipeline, share one
// Redis replay store: a token one replica took is a replay at the other,
// whatever the body; a request one replica failed is accepted as an
// identical retry at the other even with its stale original signature,
// and with any other body it is not.
func TestMailgunReplicasShareRedis(t *testing.T) {
	store := redisReplayStore(t, testenv.RedisAddr(t), webhooks.RedisTestPrefix(t))
	sourceYAML := strings.Replace(withReplayStore(allProviders, store), "ack_timeout: 5s", "ack_timeout: 300ms", 1)

	var aDown atomic.Bool
	sinkA := &pipelinetest.Sink{WriteFunc: func(context.Context, int, []*pipeline.Event) error {
		if aDown.Load() {
			return fmt.Errorf("stream unavailable")
		}
		return nil
	}}
	sinkB := &pipelinetest.Sink{}
	var skewB atomic.Int64
	a := startPipeline(t, sourceYAML, sinkA)
	b := startPipeline(t, sourceYAML, sinkB, webhooks.WithClock(func() time.Time { return time.Now().Add(time.Duration(skewB.Load())) }))
	for name, h := range map[string]*harness{"A": a, "B": b} {
		if err := h.src.Ready(); err != nil {
			t.Fatalf("replica %s not ready: %v", name, err)
		}
	}

	now := time.Now()
	taken := mailgunBody(mailgunKey, "tok-taken", now, "mg-taken", "delivered", "a@b.c")
	failedBody := mailgunBody(mailgunKey, "tok-failed", now, "mg-failed", "delivered", "a@b.c")
	steps := []struct {
		name    string
		before  func()
		replica *harness
		body    []byte
		status  int
	}{
		{"A takes a fresh token", nil, a, taken, 200},
		{"the same request at B", nil, b, taken, 401},
		{"the token with another body at B", nil, b, mailgunBody(mailgunKey, "tok-taken", now, "mg-evil", "clicked", "victim@b.c"), 401},
		{"the same request at A again", nil, a, taken, 401},
		{"A's sink fails: 503", func() { aDown.Store(true) }, a, failedBody, 503},
		// Mailgun's retry comes ~20 minutes later, long after max_age.
		{"the token with another body at B", func() { skewB.Store(int64(20 * time.Minute)) }, b, mailgunBody(mailgunKey, "tok-failed", now, "mg-forged", "clicked", "victim@b.c"), 401},
		{"the identical retry at B, stale signature", nil, b, failedBody, 200},
		{"the identical retry at B again", nil, b, failedBody, 401},
		{"the identical retry at A", func() { aDown.Store(false) }, a, failedBody, 401},
	}
	for i, st := range steps {
		if st.before != nil {
			st.before()
		}
		if got := st.replica.post(t, "/webhooks/mailgun", st.body, nil); got != st.status {
			t.Fatalf("step %d, %s: status %d, want %d", i, st.name, got, st.status)
		}
	}
	// A may also write mg-failed: its runner keeps retrying the batch it
	// took after the 503 (at-least-once, same id). Nothing forged is written.
	idsA, idsB := writesByID(sinkA), writesByID(sinkB)
	if _, ok := idsA["mailgun:mg-taken"]; !ok {
		t.Errorf("replica A did not write mg-taken: %v", idsA)
	}
	if _, ok := idsB["mailgun:mg-failed"]; !ok || len(idsB) != 1 {
		t.Errorf("replica B wrote %v, want mg-failed only", idsB)
	}
	for id := range idsA {
		if id != "mailgun:mg-taken" && id != "mailgun:mg-failed" {
			t.Errorf("replica A wrote %s", id)
		}
	}
	if got := pipelinetest.MetricSum(t, b.metrics, "sluice_webhook_requests_total", map[string]string{"provider": "mailgun", "outcome": "unauthorized"}); got != 4 {
		t.Errorf("B unauthorized = %v, want 4", got)
	}
}

// With the replay store unreachable a Mailgun request is answered 503 and
// nothing is enqueued (it is never accepted unchecked); the source reports
// not ready; the other providers are not affected.
func TestMailgunReplayStoreDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	store := fmt.Sprintf(`{redis: {addr: %q, timeout: 200ms}}`, closed)
	h := startPipeline(t, withReplayStore(allProviders, store), nil)

	if err := h.src.Ready(); err == nil || !strings.Contains(err.Error(), "mailgun replay store") || !strings.Contains(err.Error(), closed) {
		t.Fatalf("Ready = %v, want the replay store named", err)
	}
	start := time.Now()
	if got := h.post(t, "/webhooks/mailgun", mailgunBody(mailgunKey, "tok-1", time.Now(), "mg-1", "delivered", "a@b.c"), nil); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	if took := time.Since(start); took > testwait.Bound() {
		t.Errorf("answered after %v; the store timeout is 200ms", took)
	}
	if n := len(h.sink.Writes()); n != 0 {
		t.Fatalf("%d events written without the replay check", n)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_requests_total", map[string]string{"provider": "mailgun", "outcome": "unavailable"}); got != 1 {
		t.Errorf("mailgun unavailable = %v, want 1", got)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_events_total", nil); got != 0 {
		t.Errorf("events_total = %v, want 0", got)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := []byte(`[{"email":"a@b.c","timestamp":` + ts + `,"event":"open","sg_event_id":"sg-1"}]`)
	if got := h.post(t, "/webhooks/sendgrid", body, map[string]string{
		"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, sendgridKey(), ts, body),
		"X-Twilio-Email-Event-Webhook-Timestamp": ts,
	}); got != http.StatusOK {
		t.Fatalf("sendgrid status %d, want 200", got)
	}
}
