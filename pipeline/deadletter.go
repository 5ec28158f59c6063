package pipeline

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// DeadLetter is what the dead-letter sink stores for an event that failed
// permanently: enough to understand the failure and replay the original.
type DeadLetter struct {
	ID        string            `json:"id"`
	Key       string            `json:"key,omitempty"`
	Time      time.Time         `json:"time"`
	FailedAt  time.Time         `json:"failed_at"`
	Pipeline  string            `json:"pipeline"`
	Component string            `json:"component"`
	Reason    string            `json:"reason"`
	Attempts  int               `json:"attempts"`
	Meta      map[string]string `json:"meta,omitempty"`
	// Exactly one of the payload fields is set: JSON payloads are embedded
	// as they are, other UTF-8 text as a string, anything else as base64.
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   string          `json:"payload_text,omitempty"`
	PayloadBase64 string          `json:"payload_base64,omitempty"`
}

// Original returns the payload exactly as it was received.
func (d *DeadLetter) Original() ([]byte, error) {
	switch {
	case d.Payload != nil:
		return d.Payload, nil
	case d.PayloadBase64 != "":
		return base64.StdEncoding.DecodeString(d.PayloadBase64)
	}
	return []byte(d.PayloadText), nil
}

// Meta keys the runner adds to a dead-letter event, so sinks that keep
// headers (Kafka) can carry the reason without parsing the body.
const (
	MetaDeadLetterReason    = "sluice.dead_letter.reason"
	MetaDeadLetterComponent = "sluice.dead_letter.component"
)

// failure is an event that failed permanently, on its way to the dead letter.
type failure struct {
	event     *Event
	component string
	err       error
	attempts  int
}

func newDeadLetterEvent(pipeline string, f failure, now time.Time) *Event {
	ev := f.event
	dl := DeadLetter{
		ID: ev.ID, Key: string(ev.Key), Time: ev.Time, FailedAt: now,
		Pipeline: pipeline, Component: f.component, Reason: f.err.Error(), Attempts: f.attempts,
	}
	if len(ev.Meta) > 0 {
		dl.Meta = make(map[string]string, len(ev.Meta))
		for _, p := range ev.Meta {
			dl.Meta[p.Key] = p.Value
		}
	}
	switch {
	case json.Valid(ev.Payload):
		dl.Payload = ev.Payload
	case utf8.Valid(ev.Payload):
		dl.PayloadText = string(ev.Payload)
	default:
		dl.PayloadBase64 = base64.StdEncoding.EncodeToString(ev.Payload)
	}
	body, err := json.Marshal(&dl)
	if err != nil {
		// Only an unencodable time can fail here; keep the event anyway.
		dl.Time = time.Time{}
		body, _ = json.Marshal(&dl)
	}
	meta := make(Meta, 0, len(ev.Meta)+3)
	meta = append(meta, ev.Meta...)
	meta.Set(MetaDeadLetterReason, dl.Reason)
	meta.Set(MetaDeadLetterComponent, f.component)
	meta.Set("sluice.dead_letter.attempts", strconv.Itoa(f.attempts))
	return &Event{ID: ev.ID, Key: ev.Key, Time: ev.Time, Meta: meta, Payload: body, Body: body}
}
