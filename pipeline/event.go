package pipeline

import (
	"time"
)

// Event is one business event moving through a pipeline.
//
// Events are owned by the runner between Source.Read and the source's ack:
// components may change an event in place (a transform enriching Body) but
// must not keep a reference to it after the call that received it returns.
type Event struct {
	// ID is the event's stable identity: the dedupe key and the id sinks
	// write under, so a redelivered event overwrites itself.
	ID string
	// Key is the partition key. Events with equal keys are written in the
	// order the source produced them.
	Key []byte
	// Time is the event time taken from the payload (or the record's
	// timestamp until a decode step sets it), never the arrival time.
	Time time.Time
	// Meta holds facts about where the event came from: topic, partition,
	// offset, shard, headers. Small and ordered; see Meta.
	Meta Meta
	// Payload is the raw bytes as received. It is never rewritten, so the
	// dead-letter sink can always store what actually arrived.
	Payload []byte
	// Body is the decoded event as one JSON object, nil until a decode step
	// ran. Transforms read and edit it through Get, Set and Delete.
	//
	// The design notes sketched a map[string]any here; a JSON document
	// edited in place keeps the hot path at a handful of allocations per
	// event instead of one per field (docs/ARCHITECTURE.md has the figures).
	Body []byte

	// layout is where Body's top-level members lie, when the step that
	// parsed it said so; valid only for the Body it was set for (Layout).
	layout *Layout
}

// Size is the number of bytes the event holds, used for max_bytes batching.
func (e *Event) Size() int {
	n := len(e.Payload) + len(e.Key) + len(e.ID)
	if len(e.Body) > 0 && !sameBacking(e.Body, e.Payload) {
		n += len(e.Body)
	}
	return n
}

func sameBacking(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// MetaPair is one source fact.
type MetaPair struct {
	Key, Value string
}

// Meta is an ordered list of source facts. A slice rather than a map: a
// record carries three to six of them, and a slice costs one allocation.
type Meta []MetaPair

// Get returns the value for key and whether it was present.
func (m Meta) Get(key string) (string, bool) {
	for _, p := range m {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Set replaces the value for key, or appends it.
func (m *Meta) Set(key, value string) {
	for i := range *m {
		if (*m)[i].Key == key {
			(*m)[i].Value = value
			return
		}
	}
	*m = append(*m, MetaPair{Key: key, Value: value})
}
