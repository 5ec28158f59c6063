package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
)

// Meta keys the source sets on every event.
const (
	MetaProvider = "webhook.provider"
	MetaAccount  = "webhook.account"
	MetaTopicARN = "webhook.sns_topic_arn"
)

// vendorEvent is one provider event before it is wrapped.
type vendorEvent struct {
	id        string
	recipient string
	vendor    string // the provider's own event name
	time      time.Time
	data      []byte // the exact vendor event
}

// canonicalTypes maps each provider's event names onto the canonical email
// types sources/generate emits; names not listed pass through lowercased.
var canonicalTypes = map[string]map[string]string{
	"sendgrid": {"spamreport": "complaint", "group_unsubscribe": "unsubscribe", "group_resubscribe": "resubscribe"},
	"mailgun":  {"opened": "open", "clicked": "click", "failed": "bounce", "complained": "complaint", "unsubscribed": "unsubscribe"},
	"ses": {"delivery": "delivered", "subscription": "unsubscribe", "deliverydelay": "deferred",
		"renderingfailure": "rendering_failure"},
}

func canonicalType(provider, vendor string) string {
	v := strings.ToLower(vendor)
	if c, ok := canonicalTypes[provider][v]; ok {
		return c
	}
	return v
}

// fallbackID is used when a vendor event carries no id: a hash of its exact
// bytes, stable across the provider's retries of the same event.
func fallbackID(provider string, data []byte) string {
	sum := sha256.Sum256(data)
	return provider + ":sha256:" + hex.EncodeToString(sum[:16])
}

// vendorID reads a vendor event's id: absent or null is "", anything but a
// JSON string, and a string that is not valid UTF-8 (raw bytes, or a lone
// surrogate escape that decoding would replace with U+FFFD), is refused:
// replacing bytes could make two events one.
func vendorID(raw json.RawMessage) (string, *httpError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", badRequest("is not a string")
	}
	if !utf8.Valid(raw) || !validID(id) {
		return "", badRequest("is not valid UTF-8")
	}
	return id, nil
}

// validID: no byte of id was replaced (U+FFFD is what decoding puts in
// place of invalid UTF-8) and none is invalid.
func validID(id string) bool {
	return utf8.ValidString(id) && !strings.ContainsRune(id, utf8.RuneError)
}

// wrap builds the pipeline event: the envelope of internal/envelope, with
// the exact vendor event (trimmed) as data.
func wrap(provider, account, typ string, ve vendorEvent) *pipeline.Event {
	key := strings.ToLower(strings.TrimSpace(ve.recipient))
	// Ids are namespaced by provider ("sendgrid:<sg_event_id>"), so equal
	// ids of two providers never overwrite each other in an upserting sink.
	id := provider + ":" + ve.id
	if ve.id == "" {
		id = fallbackID(provider, ve.data)
	}
	data := bytes.TrimSpace(ve.data)
	env := envelope.Envelope{ID: id, Source: provider, Type: typ, AccountID: account,
		OccurredAt: ve.time.UTC().Format(time.RFC3339Nano), Key: key, Data: data}
	buf := env.Append(make([]byte, 0, len(data)+len(id)+len(key)+len(account)+160))
	ev := &pipeline.Event{ID: id, Time: ve.time, Payload: buf}
	if key != "" {
		ev.Key = []byte(key)
	}
	ev.Meta = pipeline.Meta{{Key: MetaProvider, Value: provider}, {Key: MetaAccount, Value: account}}
	return ev
}
