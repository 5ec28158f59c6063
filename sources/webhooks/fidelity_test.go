package webhooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// mailgunRaw signs a Mailgun body whose event-data is given as is.
func mailgunRaw(token string, ts time.Time, eventData string) []byte {
	tss := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(mailgunKey))
	m.Write([]byte(tss + token))
	return fmt.Appendf(nil, `{"signature":{"timestamp":%q,"token":%q,"signature":%q},"event-data":%s}`, tss, token, hex.EncodeToString(m.Sum(nil)), eventData)
}

// TestEventFidelity: provider-namespaced ids, exact decimal event times,
// and refusal (400, nothing enqueued) of ids that are not valid UTF-8 and
// of event times no event can have.
func TestEventFidelity(t *testing.T) {
	h := startPipeline(t, allProviders, nil)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	sendgrid := func(body string) (string, []byte, map[string]string) {
		b := []byte(body)
		return "/webhooks/sendgrid", b, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, sendgridKey(), ts, b), "X-Twilio-Email-Event-Webhook-Timestamp": ts}
	}
	mailgun := func(token, eventData string) (string, []byte, map[string]string) {
		return "/webhooks/mailgun", mailgunRaw(token, now, eventData), nil
	}
	type request = func() (string, []byte, map[string]string)
	for _, tc := range []struct {
		name   string
		req    request
		status int
		id     string
		at     string // occurred_at, RFC 3339
	}{
		{"mailgun decimal timestamp is exact", func() (string, []byte, map[string]string) {
			return mailgun("tok-f1", `{"event":"delivered","timestamp":1772445607.318224,"id":"mg-exact","recipient":"a@b.c"}`)
		}, 200, "mailgun:mg-exact", "2026-03-02T10:00:07.318224Z"},
		{"sendgrid decimal timestamp is exact", func() (string, []byte, map[string]string) {
			return sendgrid(`[{"email":"a@b.c","timestamp":1772445607.318224,"event":"open","sg_event_id":"sg-exact"}]`)
		}, 200, "sendgrid:sg-exact", "2026-03-02T10:00:07.318224Z"},
		{"same vendor id, other provider", func() (string, []byte, map[string]string) {
			return sendgrid(`[{"email":"a@b.c","timestamp":1772445607,"event":"open","sg_event_id":"mg-exact"}]`)
		}, 200, "sendgrid:mg-exact", "2026-03-02T10:00:07Z"},
		{"sendgrid timestamp 1e300", func() (string, []byte, map[string]string) {
			return sendgrid(`[{"email":"a@b.c","timestamp":1e300,"event":"open","sg_event_id":"sg-far"}]`)
		}, 400, "", ""},
		{"sendgrid negative timestamp", func() (string, []byte, map[string]string) {
			return sendgrid(`[{"email":"a@b.c","timestamp":-5,"event":"open","sg_event_id":"sg-neg"}]`)
		}, 400, "", ""},
		{"mailgun timestamp 1e300", func() (string, []byte, map[string]string) {
			return mailgun("tok-f2", `{"event":"delivered","timestamp":1e300,"id":"mg-far","recipient":"a@b.c"}`)
		}, 400, "", ""},
		{"sendgrid id with invalid UTF-8", func() (string, []byte, map[string]string) {
			return sendgrid("[{\"email\":\"a@b.c\",\"timestamp\":1772445607,\"event\":\"open\",\"sg_event_id\":\"sg-\xff\xfe\"}]")
		}, 400, "", ""},
		{"sendgrid id with a lone surrogate", func() (string, []byte, map[string]string) {
			return sendgrid(`[{"email":"a@b.c","timestamp":1772445607,"event":"open","sg_event_id":"sg-\udc00"}]`)
		}, 400, "", ""},
		{"mailgun id with invalid UTF-8", func() (string, []byte, map[string]string) {
			return mailgun("tok-f3", "{\"event\":\"delivered\",\"timestamp\":1772445607,\"id\":\"mg-\xc3\",\"recipient\":\"a@b.c\"}")
		}, 400, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.sink.Writes())
			path, body, hdr := tc.req()
			if got := h.post(t, path, body, hdr); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			if tc.id == "" {
				if n := len(h.sink.Writes()) - before; n != 0 {
					t.Fatalf("%d events written for a refused request", n)
				}
				return
			}
			w, ok := writesByID(h.sink)[tc.id]
			if !ok {
				t.Fatalf("no event %s written", tc.id)
			}
			e := parseEnvelope(t, w.Body)
			if e.ID != tc.id || e.OccurredAt.Format(time.RFC3339Nano) != tc.at {
				t.Errorf("envelope id %s occurred_at %s, want %s %s", e.ID, e.OccurredAt.Format(time.RFC3339Nano), tc.id, tc.at)
			}
		})
	}
}

// TestSESEventTimeOutOfRange: an SES event time no event can have is
// refused.
func TestSESEventTimeOutOfRange(t *testing.T) {
	h := startPipeline(t, allProviders, nil)
	key, _ := snsKey()
	m := notification("sns-old", "2", time.Now())
	m.Message = sesEventJSON("sns-old", "Delivery", "a@b.c", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := h.post(t, "/webhooks/ses", m.sign(t, key), nil); got != 400 {
		t.Fatalf("status %d, want 400", got)
	}
	if n := len(h.sink.Writes()); n != 0 {
		t.Fatalf("%d events written", n)
	}
}
