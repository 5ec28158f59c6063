package webhooks

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

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
	signed := sendgridSigned(timestamp, body)
	return ecdsa.VerifyASN1(key, signed[:], der)
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
		if len(e.ID) > 0 {
			var id string
			if err := json.Unmarshal(e.ID, &id); err != nil {
				return nil, badRequest("event %d: sg_event_id is not a string", i)
			}
			ve.id = id
		}
		if e.Timestamp != "" {
			sec, err := e.Timestamp.Float64()
			if err != nil {
				return nil, badRequest("event %d: timestamp is not a number", i)
			}
			ve.time = unixTime(sec)
		}
		out = append(out, ve)
	}
	return out, nil
}

func (s *Source) sendgrid(ctx context.Context, r *http.Request, body []byte, account string) (*result, *httpError) {
	cfg := s.cfg.SendGrid
	key, herr := routeKey(r, cfg.key, cfg.accountKeys)
	if herr != nil {
		return nil, herr
	}
	ts := r.Header.Get(SendGridTimestampHeader)
	if !verifySendGrid(key, r.Header.Get(SendGridSignatureHeader), ts, body) {
		return nil, unauthorized("invalid or missing SendGrid signature")
	}
	sec, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil {
		return nil, unauthorized("invalid SendGrid signature timestamp")
	}
	signedAt := time.Unix(sec, 0).UTC()
	ves, err := parseSendGrid(body)
	if err != nil {
		return nil, err.(*httpError)
	}
	// What SendGrid signed is single-use: keyed by its hash rather than by
	// the signature, which ECDSA lets anyone re-encode without the key.
	signed := sendgridSigned(ts, body)
	ref := ""
	if len(ves) > 0 {
		ref = ves[0].id
	}
	settled, herr := s.admit(ctx, s.sendgridGuard, hex.EncodeToString(signed[:]), signed, signedAt, ref)
	if herr != nil {
		return nil, herr
	}
	events := make([]*pipeline.Event, len(ves))
	for i, ve := range ves {
		if ve.time.IsZero() {
			ve.time = signedAt
		}
		events[i] = wrap("sendgrid", account, canonicalType("sendgrid", ve.vendor), ve)
	}
	return &result{events: events, settled: settled}, nil
}

// sendgridSigned is the SHA-256 the signature covers: timestamp + body.
func sendgridSigned(timestamp string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
