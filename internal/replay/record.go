// Package replay takes dead letters back to where they failed: it reads a
// dead-letter Kafka topic (or dead-letter file) up to the end it had when
// the replay started, and writes each original record (key, payload byte for
// byte, original headers plus sluice.replayed_from) to a topic or through a
// pipeline's transforms and sinks. `sluice replay` is its command line.
package replay

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one dead letter in the form both readers produce: the original
// record plus its dead-letter facts in sluice.* headers.
type Record struct {
	// From is where the dead letter was read ("crm.events.dead/2/41" or
	// "dead.jsonl:17"): the sluice.replayed_from value.
	From    string
	Key     []byte
	Value   []byte
	Time    time.Time
	Headers []Header
}

// header returns the value of the header named key.
func (r *Record) header(key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func (r *Record) str(key string) string {
	v, _ := r.header(key)
	return v
}

// ID is the original event's id (sluice.id), or From for a record that
// has none.
func (r *Record) ID() string {
	if id, ok := r.header(pipeline.MetaDeadLetterID); ok && id != "" {
		return id
	}
	return r.From
}

// Reason is why the event was dead-lettered.
func (r *Record) Reason() string { return r.str(pipeline.MetaDeadLetterReason) }

// Component is the component that failed the event.
func (r *Record) Component() string { return r.str(pipeline.MetaDeadLetterComponent) }

// Original reports whether h is one of the headers the event arrived
// with, rather than one the dead-letter sink added.
func Original(h Header) bool {
	return h.Key != pipeline.MetaDeadLetterID && h.Key != pipeline.MetaReplayedFrom &&
		!strings.HasPrefix(h.Key, pipeline.MetaDeadLetterPrefix)
}

// OriginalHeaders are the headers the event arrived with.
func (r *Record) OriginalHeaders() []Header {
	out := make([]Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if Original(h) {
			out = append(out, h)
		}
	}
	return out
}

// env is what a --filter expression sees.
func (r *Record) env() map[string]any {
	attempts, _ := strconv.Atoi(r.str(pipeline.MetaDeadLetterAttempts))
	failedAt, _ := time.Parse(time.RFC3339Nano, r.str(pipeline.MetaDeadLetterFailedAt))
	headers := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	source, _ := url.ParseQuery(r.str(pipeline.MetaDeadLetterSource))
	src := make(map[string]string, len(source))
	for k := range source {
		src[k] = source.Get(k)
	}
	return map[string]any{
		"id": r.ID(), "key": string(r.Key), "reason": r.Reason(), "component": r.Component(),
		"pipeline": r.str(pipeline.MetaDeadLetterPipeline), "attempts": attempts,
		"failed_at": failedAt, "headers": headers, "source": src,
	}
}

// fromEnvelope turns a DeadLetter JSON record (a file dead letter, or a
// Kafka dead letter written before dead letters kept the original record)
// into a Record.
func fromEnvelope(from string, dl *pipeline.DeadLetter) (Record, error) {
	orig, err := dl.Original()
	if err != nil {
		return Record{}, err
	}
	r := Record{From: from, Key: []byte(dl.Key), Value: orig, Time: dl.Time}
	add := func(k, v string) { r.Headers = append(r.Headers, Header{Key: k, Value: []byte(v)}) }
	add(pipeline.MetaDeadLetterID, dl.ID)
	add(pipeline.MetaDeadLetterReason, dl.Reason)
	add(pipeline.MetaDeadLetterComponent, dl.Component)
	add(pipeline.MetaDeadLetterAttempts, strconv.Itoa(dl.Attempts))
	add(pipeline.MetaDeadLetterPipeline, dl.Pipeline)
	if !dl.FailedAt.IsZero() {
		add(pipeline.MetaDeadLetterFailedAt, dl.FailedAt.UTC().Format(time.RFC3339Nano))
	}
	source := dl.Source
	if source == "" {
		source = pipeline.SourcePosition(metaOf(dl.Meta))
	}
	add(pipeline.MetaDeadLetterSource, source)
	for k, v := range dl.Meta {
		if name, ok := strings.CutPrefix(k, "kafka.header."); ok {
			add(name, v)
		}
	}
	return r, nil
}

func metaOf(m map[string]string) pipeline.Meta {
	out := make(pipeline.Meta, 0, len(m))
	for k, v := range m {
		out = append(out, pipeline.MetaPair{Key: k, Value: v})
	}
	return out
}

// legacyEnvelope reports whether a Kafka dead letter's value is the JSON
// envelope older sluice versions wrote instead of the original record, and
// decodes it.
func legacyEnvelope(r *Record) (*pipeline.DeadLetter, bool) {
	if _, ok := r.header(pipeline.MetaDeadLetterSource); ok {
		return nil, false
	}
	if _, ok := r.header(pipeline.MetaDeadLetterReason); !ok {
		return nil, false
	}
	var dl pipeline.DeadLetter
	if json.Unmarshal(r.Value, &dl) != nil || dl.FailedAt.IsZero() || dl.Reason == "" {
		return nil, false
	}
	return &dl, true
}

// Event is the original event of r, as the pipeline's source first made
// it: its id, key, payload, time, source facts and headers (as
// kafka.header.* facts), plus sluice.replayed_from.
func (r *Record) Event() *pipeline.Event {
	ev := &pipeline.Event{ID: r.ID(), Key: r.Key, Time: r.Time, Payload: r.Value}
	source, _ := url.ParseQuery(r.str(pipeline.MetaDeadLetterSource))
	for _, k := range slices.Sorted(maps.Keys(source)) {
		ev.Meta.Set(k, source.Get(k))
	}
	for _, h := range r.OriginalHeaders() {
		ev.Meta.Set("kafka.header."+h.Key, string(h.Value))
	}
	ev.Meta.Set(pipeline.MetaReplayedFrom, r.From)
	return ev
}
