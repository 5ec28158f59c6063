package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

type mailgunBody struct {
	Signature *struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData *struct {
		ID        string      `json:"id"`
		Event     string      `json:"event"`
		Severity  string      `json:"severity"`
		Timestamp json.Number `json:"timestamp"`
		Recipient string      `json:"recipient"`
	} `json:"event-data"`
}

// verifyMailgun checks Mailgun's documented scheme: hex HMAC-SHA256 of
// timestamp+token keyed with the webhook signing key.
func verifyMailgun(key []byte, timestamp, token, sig string) bool {
	if timestamp == "" || token == "" || sig == "" {
		return false
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte(token))
	return hmac.Equal(m.Sum(nil), want)
}

// parseMailgun decodes a Mailgun JSON webhook. The vendor event is the
// whole body ({signature, event-data}), as sources/generate writes it.
func parseMailgun(body []byte) (*mailgunBody, vendorEvent, error) {
	var b mailgunBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, vendorEvent{}, badRequest("body is not a Mailgun JSON webhook: %v", err)
	}
	if b.Signature == nil {
		return nil, vendorEvent{}, unauthorized("missing Mailgun signature")
	}
	if b.EventData == nil || b.EventData.Event == "" {
		return nil, vendorEvent{}, badRequest("missing event-data.event")
	}
	ve := vendorEvent{id: b.EventData.ID, recipient: b.EventData.Recipient, vendor: b.EventData.Event, data: body}
	if b.EventData.Timestamp != "" {
		sec, err := b.EventData.Timestamp.Float64()
		if err != nil {
			return nil, vendorEvent{}, badRequest("event-data.timestamp is not a number")
		}
		ve.time = unixTime(sec)
	}
	return &b, ve, nil
}

func (s *Source) mailgun(ctx context.Context, r *http.Request, body []byte, account string) (*result, *httpError) {
	cfg := s.cfg.Mailgun
	b, ve, err := parseMailgun(body)
	if err != nil {
		return nil, err.(*httpError)
	}
	key, herr := routeKey(r, cfg.SigningKey, cfg.AccountKeys)
	if herr != nil {
		return nil, herr
	}
	sig := b.Signature
	if !verifyMailgun([]byte(key), sig.Timestamp, sig.Token, sig.Signature) {
		return nil, unauthorized("invalid Mailgun signature")
	}
	sec, perr := strconv.ParseInt(sig.Timestamp, 10, 64)
	if perr != nil {
		return nil, unauthorized("invalid Mailgun signature timestamp")
	}
	signedAt := time.Unix(sec, 0)
	// Mailgun signs only timestamp+token: the body is what an identical
	// retry must repeat.
	settled, herr := s.admit(ctx, s.mailgunGuard, sig.Token, sha256.Sum256(body), signedAt, ve.id)
	if herr != nil {
		return nil, herr
	}
	if ve.time.IsZero() {
		ve.time = signedAt.UTC()
	}
	typ := ve.vendor
	if typ == "failed" && b.EventData.Severity == "temporary" {
		typ = "deferred"
	} else {
		typ = canonicalType("mailgun", typ)
	}
	return &result{events: []*pipeline.Event{wrap("mailgun", account, typ, ve)}, settled: settled}, nil
}

// routeKey is the key that verifies a request on r's route: the route's
// account's own key when the provider has account keys (an account they
// do not list is answered 404), else the shared key.
func routeKey[K comparable](r *http.Request, shared K, perAccount map[string]K) (K, *httpError) {
	var zero K
	if a := r.PathValue("account"); a != "" && len(perAccount) > 0 {
		k, ok := perAccount[a]
		if !ok {
			return zero, reject(http.StatusNotFound, outcomeForbidden, "unknown account")
		}
		return k, nil
	}
	if shared == zero {
		return zero, reject(http.StatusNotFound, outcomeForbidden, "this route needs an account")
	}
	return shared, nil
}
