package webhooks

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/pipeline"
)

// SendGrid's signed Event Webhook headers.
const (
	SendGridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	SendGridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// verifySendGrid checks SendGrid's documented scheme: an ECDSA P-256
// signature (ASN.1 DER, base64) over SHA-256(timestamp header + raw body).
func verifySendGrid(key *ecdsa.PublicKey, sig, timestamp string, body []byte) bool {
	if sig == "" || timestamp == "" {
		return false
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	return ecdsa.VerifyASN1(key, h.Sum(nil), der)
}

type sendgridEvent struct {
	Email     string          `json:"email"`
	Timestamp json.Number     `json:"timestamp"`
	Event     string          `json:"event"`
	ID        json.RawMessage `json:"sg_event_id"`
}

// parseSendGrid splits the JSON array into vendor events, keeping each
// element's exact bytes.
func parseSendGrid(body []byte) ([]vendorEvent, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, badRequest("body is not a JSON array of events: %v", err)
	}
	out := make([]vendorEvent, 0, len(raws))
	for i, raw := range raws {
		var e sendgridEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, badRequest("event %d is not a SendGrid event object: %v", i, err)
		}
		if e.Event == "" {
			return nil, badRequest("event %d has no event name", i)
		}
		ve := vendorEvent{recipient: e.Email, vendor: e.Event, data: raw}
		id, herr := vendorID(e.ID)
		if herr != nil {
			return nil, badRequest("event %d: sg_event_id %s", i, herr.msg)
		}
		ve.id = id
		if e.Timestamp != "" {
			t, err := eventtime.Parse(string(e.Timestamp), eventtime.Seconds)
			if err != nil {
				return nil, badRequest("event %d: timestamp: %v", i, err)
			}
			ve.time = t
		}
		out = append(out, ve)
	}
	return out, nil
}

func (s *Source) sendgrid(_ context.Context, r *http.Request, body []byte, account string) (*result, *httpError) {
	cfg := s.cfg.SendGrid
	ts := r.Header.Get(SendGridTimestampHeader)
	if !verifySendGrid(cfg.key, r.Header.Get(SendGridSignatureHeader), ts, body) {
		return nil, unauthorized("invalid or missing SendGrid signature")
	}
	signedAt := time.Time{}
	if sec, err := strconv.ParseInt(ts, 10, 64); err == nil {
		signedAt = time.Unix(sec, 0).UTC()
	}
	if cfg.MaxAge > 0 {
		if signedAt.IsZero() || absDuration(s.now().Sub(signedAt)) > cfg.MaxAge.D() {
			return nil, unauthorized("stale SendGrid signature timestamp")
		}
	}
	ves, err := parseSendGrid(body)
	if err != nil {
		return nil, err.(*httpError)
	}
	events := make([]*pipeline.Event, len(ves))
	for i, ve := range ves {
		if ve.time.IsZero() {
			ve.time = signedAt
		}
		events[i] = wrap("sendgrid", account, canonicalType("sendgrid", ve.vendor), ve)
	}
	return &result{events: events}, nil
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
