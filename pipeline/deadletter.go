package pipeline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DeadLetter is the JSON record of an event that failed permanently:
// enough to understand the failure and replay the original. Sinks without
// record headers (file, Kinesis, MongoDB, Elasticsearch) store it as the
// dead letter's body; the Kafka sink writes the original record instead and
// carries these facts in sluice.dead_letter.* headers (see IsDeadLetter).
type DeadLetter struct {
	// ID is the event's id, so a consumer of the dead letters can dedupe.
	ID        string    `json:"id"`
	Key       string    `json:"key,omitempty"`
	Time      time.Time `json:"time"`
	FailedAt  time.Time `json:"failed_at"`
	Pipeline  string    `json:"pipeline"`
	Component string    `json:"component"`
	Reason    string    `json:"reason"`
	Attempts  int       `json:"attempts"`
	// Source is where the event was read, as URL query text of the
	// source's facts: "kafka.offset=17&kafka.partition=3&kafka.topic=crm".
	Source string `json:"source,omitempty"`
	// Meta holds every fact of the event, its original headers included
	// ("kafka.header.<name>").
	Meta map[string]string `json:"meta,omitempty"`
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

// Meta keys (and Kafka header names) the runner adds to a dead-letter
// event. MetaDeadLetterID is the event id: the Kafka sink writes every
// event's id in it.
const (
	MetaDeadLetterID        = "sluice.id"
	MetaDeadLetterReason    = "sluice.dead_letter.reason"
	MetaDeadLetterComponent = "sluice.dead_letter.component"
	MetaDeadLetterAttempts  = "sluice.dead_letter.attempts"
	MetaDeadLetterPipeline  = "sluice.dead_letter.pipeline"
	MetaDeadLetterFailedAt  = "sluice.dead_letter.failed_at"
	MetaDeadLetterSource    = "sluice.dead_letter.source"
	// MetaDeadLetterPrefix starts every dead-letter fact.
	MetaDeadLetterPrefix = "sluice.dead_letter."
	// MetaReplayedFrom is set on an event `sluice replay` took from a dead
	// letter: where the dead letter was read.
	MetaReplayedFrom = "sluice.replayed_from"
)

// IsDeadLetter reports whether ev is a dead letter the runner made: its
// Payload is the original payload byte for byte, its Key the original key,
// its Meta the original facts plus the sluice.dead_letter.* ones, and its
// Body the DeadLetter record as JSON. A sink that keeps record headers
// (Kafka) writes Payload with the facts as headers; the others write Body.
func IsDeadLetter(ev *Event) bool {
	_, ok := ev.Meta.Get(MetaDeadLetterReason)
	return ok
}

// SourcePosition encodes the facts of m that say where an event was read
// (everything but headers and sluice.* facts) as URL query text.
func SourcePosition(m Meta) string {
	v := url.Values{}
	for _, p := range m {
		if strings.HasPrefix(p.Key, "sluice.") || strings.Contains(p.Key, ".header.") {
			continue
		}
		v.Set(p.Key, p.Value)
	}
	return v.Encode()
}

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
		Source: SourcePosition(ev.Meta),
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
	meta := make(Meta, 0, len(ev.Meta)+6)
	for _, p := range ev.Meta {
		// A replayed event that fails again gets fresh facts, not its
		// first failure's.
		if !strings.HasPrefix(p.Key, MetaDeadLetterPrefix) {
			meta = append(meta, p)
		}
	}
	meta.Set(MetaDeadLetterReason, dl.Reason)
	meta.Set(MetaDeadLetterComponent, f.component)
	meta.Set(MetaDeadLetterAttempts, strconv.Itoa(f.attempts))
	meta.Set(MetaDeadLetterPipeline, pipeline)
	meta.Set(MetaDeadLetterFailedAt, now.UTC().Format(time.RFC3339Nano))
	meta.Set(MetaDeadLetterSource, dl.Source)
	return &Event{ID: ev.ID, Key: ev.Key, Time: ev.Time, Meta: meta, Payload: ev.Payload, Body: body}
}

// deadLetterKey is what a written dead letter is remembered under: the
// event id, and for an event `sluice replay` took from a dead letter, where
// it took it from (a replayed event that fails again must get a dead letter
// of its own, even within the window of its first one). Events without an
// id are never remembered.
func deadLetterKey(ev *Event) string {
	if ev.ID == "" {
		return ""
	}
	from, _ := ev.Meta.Get(MetaReplayedFrom)
	return ev.ID + "\x1f" + from
}

// unwrittenDeadLetters leaves out the failures whose dead letter a
// DeadLetterMemory remembers as written (within its window), and returns
// the keys to mark once the others are written. Without a memory, or when
// it cannot answer, every failure is written.
func (p *Pipeline) unwrittenDeadLetters(ctx context.Context, failures []failure) ([]failure, []string) {
	if p.dlMemory == nil {
		return failures, nil
	}
	keys := make([]string, 0, len(failures))
	idx := make([]int, 0, len(failures))
	for i, f := range failures {
		if k := deadLetterKey(f.event); k != "" {
			keys = append(keys, k)
			idx = append(idx, i)
		}
	}
	if len(keys) == 0 {
		return failures, nil
	}
	written := make([]bool, len(keys))
	if err := p.dlMemory.DeadLettersWritten(ctx, keys, written); err != nil {
		p.log.Warn("cannot tell which dead letters were already written; writing them all", "err", err)
		return failures, keys
	}
	skip := make(map[int]bool)
	var mark []string
	for j, i := range idx {
		if written[j] {
			skip[i] = true
			p.log.Info("dead letter already written within the dedupe window; not written again", "event", failures[i].event.ID, "component", failures[i].component)
			continue
		}
		mark = append(mark, keys[j])
	}
	if len(skip) == 0 {
		return failures, keys
	}
	p.metrics.deadLettersRepeated.Add(float64(len(skip)))
	out := make([]failure, 0, len(failures)-len(skip))
	for i, f := range failures {
		if !skip[i] {
			out = append(out, f)
		}
	}
	return out, mark
}
