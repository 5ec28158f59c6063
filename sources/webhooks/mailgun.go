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

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/pipeline"
)

type mailgunBody struct {
	Signature *struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData *struct {
		ID        json.RawMessage `json:"id"`
		Event     string          `json:"event"`
		Severity  string          `json:"severity"`
		Timestamp json.Number     `json:"timestamp"`
		Recipient string          `json:"recipient"`
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
	id, herr := vendorID(b.EventData.ID)
	if herr != nil {
		return nil, vendorEvent{}, badRequest("event-data.id %s", herr.msg)
	}
	ve := vendorEvent{id: id, recipient: b.EventData.Recipient, vendor: b.EventData.Event, data: body}
	if b.EventData.Timestamp != "" {
		t, err := eventtime.Parse(string(b.EventData.Timestamp), eventtime.Seconds)
		if err != nil {
			return nil, vendorEvent{}, badRequest("event-data.timestamp: %v", err)
		}
		ve.time = t
	}
	return &b, ve, nil
}

func (s *Source) mailgun(ctx context.Context, _ *http.Request, body []byte, account string) (*result, *httpError) {
	cfg := s.cfg.Mailgun
	b, ve, err := parseMailgun(body)
	if err != nil {
		return nil, err.(*httpError)
	}
	sig := b.Signature
	if !verifyMailgun([]byte(cfg.SigningKey), sig.Timestamp, sig.Token, sig.Signature) {
		return nil, unauthorized("invalid Mailgun signature")
	}
	sec, perr := strconv.ParseInt(sig.Timestamp, 10, 64)
	if perr != nil {
		return nil, unauthorized("invalid Mailgun signature timestamp")
	}
	signedAt := time.Unix(sec, 0)
	res, serr := s.replay.reserve(ctx, sig.Token, sha256.Sum256(body), signedAt, cfg.MaxAge.D(), s.now())
	if serr != nil {
		// Fail closed: without the store we cannot tell a replay from a
		// first delivery. Mailgun retries the 503.
		if ctx.Err() == nil {
			s.storeAnswered(serr)
			s.log.Warn("mailgun replay store unavailable; answering 503 so Mailgun retries", "err", serr)
		}
		return nil, reject(http.StatusServiceUnavailable, outcomeUnavailable, "replay store unavailable, retry later")
	}
	s.storeAnswered(nil)
	switch res {
	case replayed:
		return nil, unauthorized("replayed Mailgun token")
	case stale:
		return nil, unauthorized("stale Mailgun signature timestamp")
	case replayFull:
		return nil, reject(http.StatusServiceUnavailable, outcomeUnavailable, "too many recent requests, retry later")
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
	token, id := sig.Token, ve.id
	return &result{
		events: []*pipeline.Event{wrap("mailgun", account, typ, ve)},
		settled: func(ctx context.Context, ok bool) {
			err := s.replay.settle(ctx, token, ok, s.now(), cfg.RetryWindow.D())
			s.storeAnswered(err)
			switch {
			case err == nil:
			case ok:
				// The token stays in flight until it expires: replays are
				// rejected all the same.
				s.log.Warn("mailgun replay store: could not mark a written request's token used", "event_id", id, "err", err)
			default:
				s.log.Error("mailgun replay store: could not mark a failed request's token for retry; Mailgun's retries of this request will be rejected as replays", "event_id", id, "err", err)
			}
		},
	}, nil
}
