package webhooks_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

const allProviders = `listen: 127.0.0.1:0
account_id: acct_default
max_body_bytes: 16KiB
ack_timeout: 5s
sendgrid: {public_key: "${SENDGRID_KEY}"}
mailgun: {signing_key: "${MAILGUN_KEY}", max_age: 5m}
ses: {regions: [us-east-1], topic_arns: ["arn:aws:sns:us-east-1:123456789012:ses-events"]}
`

func TestSendGrid(t *testing.T) {
	h := startPipeline(t, allProviders, nil)
	key := sendgridKey()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	ev1 := fmt.Sprintf(`{"email":"Grace.Hopper@Globex.io","timestamp":%d,"event":"delivered","sg_event_id":"sg-1","sg_message_id":"m1.filter0001","smtp-id":"<m1@sluice.example>","category":["sequence"]}`, now-5)
	ev2 := fmt.Sprintf(`{"email":"alan.turing@initech.com","timestamp":%d,"event":"spamreport","sg_event_id":"sg-2"}`, now-3)
	good := []byte("[" + ev1 + ",\n  " + ev2 + "]")
	big := []byte("[" + strings.Repeat(ev1+",", 200) + ev1 + "]")
	signed := func(k *ecdsa.PrivateKey, ts string, body []byte) map[string]string {
		return map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, k, ts, body), "X-Twilio-Email-Event-Webhook-Timestamp": ts}
	}
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		ids    []string
	}{
		{"valid", "/webhooks/sendgrid", good, signed(key, ts, good), 200, []string{"sendgrid:sg-1", "sendgrid:sg-2"}},
		{"account from route", "/webhooks/sendgrid/acct_42", []byte("[" + strings.Replace(ev1, "sg-1", "sg-3", 1) + "]"), nil, 200, []string{"sendgrid:sg-3"}},
		{"signature over other body", "/webhooks/sendgrid", good, signed(key, ts, []byte("[]")), 401, nil},
		{"signature over other timestamp", "/webhooks/sendgrid", good, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, key, ts, good), "X-Twilio-Email-Event-Webhook-Timestamp": strconv.FormatInt(now+1, 10)}, 401, nil},
		{"signed by another key", "/webhooks/sendgrid", good, signed(other, ts, good), 401, nil},
		{"no signature", "/webhooks/sendgrid", good, nil, 401, nil},
		{"signature not base64", "/webhooks/sendgrid", good, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": "%%%", "X-Twilio-Email-Event-Webhook-Timestamp": ts}, 401, nil},
		{"malformed JSON", "/webhooks/sendgrid", []byte(`[{"email":`), signed(key, ts, []byte(`[{"email":`)), 400, nil},
		{"not an array of objects", "/webhooks/sendgrid", []byte(`[1,2]`), signed(key, ts, []byte(`[1,2]`)), 400, nil},
		{"event without name", "/webhooks/sendgrid", []byte(`[{"email":"a@b.c"}]`), signed(key, ts, []byte(`[{"email":"a@b.c"}]`)), 400, nil},
		{"body over max_body_bytes", "/webhooks/sendgrid", big, signed(key, ts, big), 413, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.hdr == nil && tc.status == 200 {
				tc.hdr = signed(key, ts, tc.body)
			}
			before := len(h.sink.Writes())
			if got := h.post(t, tc.path, tc.body, tc.hdr); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			// A 2xx comes only after the ack, so the writes are already there;
			// a rejection must have enqueued nothing.
			if got := len(h.sink.Writes()) - before; got != len(tc.ids) {
				t.Fatalf("%d events written, want %d", got, len(tc.ids))
			}
			w := writesByID(h.sink)
			for _, id := range tc.ids {
				if _, ok := w[id]; !ok {
					t.Errorf("event %s not written", id)
				}
			}
		})
	}
	w := writesByID(h.sink)
	e := parseEnvelope(t, w["sendgrid:sg-1"].Body)
	if e.ID != "sendgrid:sg-1" || e.Source != "sendgrid" || e.Type != "delivered" || e.AccountID != "acct_default" || e.Key != "grace.hopper@globex.io" || w["sendgrid:sg-1"].Key != e.Key {
		t.Errorf("envelope %+v, sink key %q", e, w["sendgrid:sg-1"].Key)
	}
	if !e.OccurredAt.Equal(time.Unix(now-5, 0)) {
		t.Errorf("occurred_at %v, want %v", e.OccurredAt, time.Unix(now-5, 0))
	}
	if string(e.Data) != ev1 {
		t.Errorf("data is not the exact vendor event:\n got %s\nwant %s", e.Data, ev1)
	}
	if e2 := parseEnvelope(t, w["sendgrid:sg-2"].Body); e2.Type != "complaint" {
		t.Errorf("spamreport became type %q, want complaint", e2.Type)
	}
	if e3 := parseEnvelope(t, w["sendgrid:sg-3"].Body); e3.AccountID != "acct_42" {
		t.Errorf("account from route: %q", e3.AccountID)
	}
	for outcome, want := range map[string]float64{"accepted": 2, "unauthorized": 5, "bad_request": 3, "too_large": 1} {
		if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_requests_total", map[string]string{"provider": "sendgrid", "outcome": outcome}); got != want {
			t.Errorf("requests_total{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_events_total", map[string]string{"provider": "sendgrid"}); got != 3 {
		t.Errorf("events_total = %v, want 3", got)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_request_duration_seconds", map[string]string{"provider": "sendgrid"}); got != 11 {
		t.Errorf("latency observations = %v, want 11", got)
	}
}

func TestSendGridStaleTimestamp(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nsendgrid: {public_key: \"${SENDGRID_KEY}\", max_age: 1m}\n", nil)
	body := []byte(`[{"email":"a@b.c","timestamp":1700000000,"event":"open","sg_event_id":"sg-old"}]`)
	for _, tc := range []struct {
		name   string
		at     time.Time
		status int
	}{
		{"stale", time.Now().Add(-2 * time.Minute), 401},
		{"future", time.Now().Add(2 * time.Minute), 401},
		{"fresh", time.Now(), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := strconv.FormatInt(tc.at.Unix(), 10)
			hdr := map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, sendgridKey(), ts, body), "X-Twilio-Email-Event-Webhook-Timestamp": ts}
			if got := h.post(t, "/webhooks/sendgrid", body, hdr); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
	if n := len(h.sink.Writes()); n != 1 {
		t.Fatalf("%d writes, want 1", n)
	}
}

func TestMailgun(t *testing.T) {
	for _, st := range replayStores {
		t.Run(st.name, func(t *testing.T) { testMailgun(t, withReplayStore(allProviders, st.yaml(t))) })
	}
}

func testMailgun(t *testing.T, sourceYAML string) {
	h := startPipeline(t, sourceYAML, nil)
	now := time.Now()
	valid := mailgunBody(mailgunKey, "tok-1", now, "mg-1", "opened", "Linus@Hooli.xyz")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		id     string
	}{
		{"valid", valid, 200, "mailgun:mg-1"},
		{"replayed token", valid, 401, ""},
		{"replayed token, other event", mailgunBody(mailgunKey, "tok-1", now, "mg-9", "clicked", "x@y.z"), 401, ""},
		{"wrong signing key", mailgunBody("key-other", "tok-2", now, "mg-2", "delivered", "x@y.z"), 401, ""},
		{"stale timestamp", mailgunBody(mailgunKey, "tok-3", now.Add(-6*time.Minute), "mg-3", "delivered", "x@y.z"), 401, ""},
		{"timestamp in the future", mailgunBody(mailgunKey, "tok-4", now.Add(6*time.Minute), "mg-4", "delivered", "x@y.z"), 401, ""},
		{"tampered event", bytes.Replace(mailgunBody(mailgunKey, "tok-5", now, "mg-5", "delivered", "x@y.z"), []byte(`"tok-5"`), []byte(`"tok-6"`), 1), 401, ""},
		{"no signature", []byte(`{"event-data":{"event":"delivered","id":"mg-7"}}`), 401, ""},
		{"malformed", []byte(`{"signature":`), 400, ""},
		{"no event-data", []byte(`{"signature":{"timestamp":"1","token":"t","signature":"00"}}`), 400, ""},
		{"second valid token", mailgunBody(mailgunKey, "tok-8", now, "mg-8", "failed", "x@y.z"), 200, "mailgun:mg-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.sink.Writes())
			if got := h.post(t, "/webhooks/mailgun", tc.body, nil); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			want := 0
			if tc.id != "" {
				want = 1
				if _, ok := writesByID(h.sink)[tc.id]; !ok {
					t.Fatalf("event %s not written", tc.id)
				}
			}
			if got := len(h.sink.Writes()) - before; got != want {
				t.Fatalf("%d events written, want %d", got, want)
			}
		})
	}
	w := writesByID(h.sink)["mailgun:mg-1"]
	e := parseEnvelope(t, w.Body)
	if e.Source != "mailgun" || e.Type != "open" || e.Key != "linus@hooli.xyz" || !e.OccurredAt.Equal(time.Unix(now.Unix(), 250e6)) {
		t.Errorf("envelope %+v", e)
	}
	if string(e.Data) != string(valid) {
		t.Errorf("data is not the exact webhook body:\n got %s\nwant %s", e.Data, valid)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_requests_total", map[string]string{"provider": "mailgun", "outcome": "unauthorized"}); got != 7 {
		t.Errorf("unauthorized = %v, want 7", got)
	}
}

func TestSES(t *testing.T) {
	h := startPipeline(t, allProviders, nil)
	key, _ := snsKey()
	now := time.Now().UTC().Truncate(time.Millisecond)
	subject := "Amazon SES Email Event Notification"
	withSubject := notification("sns-3", "2", now)
	withSubject.Subject = &subject
	tampered := notification("sns-4", "2", now)
	tamperedBody := tampered.sign(t, key)
	tamperedBody = bytes.Replace(tamperedBody, []byte("Ada.Lovelace"), []byte("Eve.Attacker"), 1)
	mutate := func(m *snsMsg, f func(*snsMsg)) *snsMsg { f(m); return m }
	for _, tc := range []struct {
		name      string
		msg       *snsMsg
		raw       []byte // sent as is instead of msg
		status    int
		id        string
		confirmed bool
		fetches   bool // the certificate URL may be fetched
	}{
		{"notification v1 (SHA1withRSA)", notification("sns-1", "1", now), nil, 200, "ses:sns-1", false, true},
		{"notification v2 (SHA256withRSA)", notification("sns-2", "2", now), nil, 200, "ses:sns-2", false, true},
		{"notification with Subject", withSubject, nil, 200, "ses:sns-3", false, true},
		{"subscription confirmation v1", confirmation("c-1", "1"), nil, 200, "", true, true},
		{"subscription confirmation v2", confirmation("c-2", "2"), nil, 200, "", true, true},
		{"unsubscribe confirmation", mutate(confirmation("c-4", "2"), func(m *snsMsg) { m.Type = "UnsubscribeConfirmation" }), nil, 200, "", false, true},
		{"tampered message", nil, tamperedBody, 401, "", false, true},
		{"signature version 3", mutate(notification("sns-5", "2", now), func(m *snsMsg) { m.SignatureVersion = "3" }), nil, 401, "", false, true},
		{"cert URL on another host", mutate(notification("sns-6", "2", now), func(m *snsMsg) { m.SigningCertURL = "https://evil.example.com/sns.us-east-1.amazonaws.com/cert.pem" }), nil, 401, "", false, false},
		{"cert URL host suffix trick", mutate(notification("sns-7", "2", now), func(m *snsMsg) { m.SigningCertURL = "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem" }), nil, 401, "", false, false},
		{"cert URL over http", mutate(notification("sns-8", "2", now), func(m *snsMsg) { m.SigningCertURL = "http://sns.us-east-1.amazonaws.com/cert.pem" }), nil, 401, "", false, false},
		{"cert URL with userinfo", mutate(notification("sns-9", "2", now), func(m *snsMsg) { m.SigningCertURL = "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem" }), nil, 401, "", false, false},
		{"cert URL in a region not allowed", mutate(notification("sns-10", "2", now), func(m *snsMsg) { m.SigningCertURL = "https://sns.eu-west-1.amazonaws.com/cert.pem" }), nil, 401, "", false, false},
		{"topic not allowed", mutate(notification("sns-11", "2", now), func(m *snsMsg) { m.TopicArn = "arn:aws:sns:us-east-1:123456789012:other" }), nil, 403, "", false, true},
		{"SubscribeURL not on SNS", mutate(confirmation("c-3", "2"), func(m *snsMsg) { m.SubscribeURL = "https://evil.example.com/?Action=ConfirmSubscription" }), nil, 403, "", false, true},
		{"Message not JSON", mutate(notification("sns-12", "2", now), func(m *snsMsg) { m.Message = "hello" }), nil, 400, "", false, true},
		{"unknown Type", mutate(notification("sns-13", "2", now), func(m *snsMsg) { m.Type = "Other" }), nil, 400, "", false, false},
		{"malformed", nil, []byte(`{"Type":`), 400, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.raw
			if body == nil {
				if tc.msg.Signature == "" {
					// Sign with the fields as sent: the signature is valid, only
					// the checks under test may reject the message.
					body = tc.msg.sign(t, key)
				}
			}
			before, reqs := len(h.sink.Writes()), len(h.aws.requests())
			hdr := map[string]string{}
			if tc.msg != nil {
				hdr["X-Amz-Sns-Message-Type"] = tc.msg.Type
			}
			if got := h.post(t, "/webhooks/ses", body, hdr); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			want := 0
			if tc.id != "" {
				want = 1
				if _, ok := writesByID(h.sink)[tc.id]; !ok {
					t.Fatalf("event %s not written", tc.id)
				}
			}
			if got := len(h.sink.Writes()) - before; got != want {
				t.Fatalf("%d events written, want %d", got, want)
			}
			var confirmed bool
			for _, u := range h.aws.requests()[reqs:] {
				if !strings.HasPrefix(u, "https://sns.us-east-1.amazonaws.com/") {
					t.Errorf("the source fetched %s", u)
				}
				if strings.Contains(u, "Action=ConfirmSubscription") {
					confirmed = true
				}
			}
			if confirmed != tc.confirmed {
				t.Errorf("confirmed = %v, want %v (requests %v)", confirmed, tc.confirmed, h.aws.requests()[reqs:])
			}
			if !tc.fetches && len(h.aws.requests()) != reqs {
				t.Errorf("fetched %v for a message that must be rejected before", h.aws.requests()[reqs:])
			}
		})
	}
	w := writesByID(h.sink)["ses:sns-1"]
	e := parseEnvelope(t, w.Body)
	if e.Source != "ses" || e.Type != "delivered" || e.Key != "ada.lovelace@example.com" || !e.OccurredAt.Equal(now) || e.AccountID != "acct_default" {
		t.Errorf("envelope %+v (want occurred_at %v)", e, now)
	}
	if string(e.Data) != notification("sns-1", "1", now).Message {
		t.Errorf("data is not the exact SES event: %s", e.Data)
	}
}

func TestSESManualConfirmation(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nses: {confirm_subscriptions: false, topic_arns: [\"arn:aws:sns:us-east-1:123456789012:ses-events\"]}\n", nil)
	key, _ := snsKey()
	m := confirmation("c-9", "2")
	if got := h.post(t, "/webhooks/ses", m.sign(t, key), nil); got != 200 {
		t.Fatalf("status %d", got)
	}
	for _, u := range h.aws.requests() {
		if strings.Contains(u, "ConfirmSubscription") {
			t.Fatalf("confirmed although confirm_subscriptions is false: %s", u)
		}
	}
}

func TestSESCertificateUnavailable(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nses: {topic_arns: [\"arn:aws:sns:us-east-1:123456789012:ses-events\"]}\n", nil)
	h.aws.mu.Lock()
	h.aws.fail = true
	h.aws.mu.Unlock()
	key, _ := snsKey()
	if got := h.post(t, "/webhooks/ses", notification("sns-x", "2", time.Now()).sign(t, key), nil); got != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 so SNS retries", got)
	}
	if n := len(h.sink.Writes()); n != 0 {
		t.Fatalf("%d writes", n)
	}
}

// The stream sink is down: the request must wait for the ack no longer than
// ack_timeout and answer 503, with nothing written. Mailgun then retries the
// same request, perhaps with its original signature long after max_age: an
// identical retry of a request we failed is accepted, anything else with
// that token is not.
func TestSinkDownAnswers503(t *testing.T) {
	for _, st := range replayStores {
		t.Run(st.name, func(t *testing.T) { testSinkDownAnswers503(t, withReplayStore(allProviders, st.yaml(t))) })
	}
}

func testSinkDownAnswers503(t *testing.T, sourceYAML string) {
	var down = make(chan struct{})
	sink := &pipelinetest.Sink{WriteFunc: func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		select {
		case <-down:
			return nil
		default:
			return fmt.Errorf("stream unavailable")
		}
	}}
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	h := startPipeline(t, strings.Replace(sourceYAML, "ack_timeout: 5s", "ack_timeout: 300ms", 1), sink, webhooks.WithClock(clock))
	signedAt := time.Now()
	body := mailgunBody(mailgunKey, "tok-down", signedAt, "mg-down", "delivered", "a@b.c")
	start := time.Now()
	if got := h.post(t, "/webhooks/mailgun", body, nil); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", got)
	}
	if took := time.Since(start); took > testwait.Bound() {
		t.Errorf("answered after %v; ack_timeout is 300ms", took)
	}
	if n := len(sink.Writes()); n != 0 {
		t.Fatalf("%d events written while the sink is down", n)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_requests_total", map[string]string{"provider": "mailgun", "outcome": "unavailable"}); got != 1 {
		t.Errorf("unavailable = %v, want 1", got)
	}
	if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_events_total", nil); got != 0 {
		t.Errorf("events_total = %v, want 0", got)
	}
	close(down)
	skew.Store(int64(20 * time.Minute)) // Mailgun's second retry comes ~20 minutes later
	forged := mailgunBody(mailgunKey, "tok-down", signedAt, "mg-forged", "clicked", "victim@b.c")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"same token, other body", forged, 401},
		{"identical retry, stale signature", body, 200},
		{"identical retry after it was written", body, 401},
		{"fresh-looking but unknown stale token", mailgunBody(mailgunKey, "tok-new", signedAt, "mg-new", "delivered", "a@b.c"), 401},
	} {
		if got := h.post(t, "/webhooks/mailgun", tc.body, nil); got != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}
	ids := writesByID(sink)
	if _, ok := ids["mailgun:mg-down"]; !ok {
		t.Fatal("event not written after recovery")
	}
	if _, ok := ids["mailgun:mg-forged"]; ok {
		t.Fatal("an event riding on a failed request's token was written")
	}
}
