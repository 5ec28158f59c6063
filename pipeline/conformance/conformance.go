// Package conformance is the table every sink and every source of sluice
// runs against its real (or stand-in) server, like Watermill's shared
// pubsub tests: one definition of what the contracts in pipeline/component.go
// mean, checked the same way for every component.
//
// A component's test calls TestSink or TestSource with a factory. The
// factory gives the suite what it cannot know generically (how to read the
// store back, which event the component refuses, a server that cannot be
// reached). Those capabilities are optional: a case that needs one the
// component does not offer is skipped with t.Skip and the reason, so `go
// test -v` lists exactly what a component was not checked for.
// docs/components.md lists the capabilities and the cases that need them.
package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// Record is one thing a store holds: the event id it was written under and
// the body as JSON (an object holding the suite's "seq" field).
type Record struct {
	ID   string
	Body []byte
}

// Kind is what a store does with a second write of an id.
type Kind int

const (
	// Store holds one record per id; a rewrite replaces it (Elasticsearch,
	// MongoDB). Read-back must show each id once.
	Store Kind = iota
	// Log appends every write; readers deduplicate by id (file, Kafka,
	// Kinesis). Read-back may show an id several times, always with the
	// same body for the same write, in write order for one key.
	Log
)

func (k Kind) String() string {
	if k == Log {
		return "log"
	}
	return "store"
}

// hangBound bounds every wait of the suite: generous, so that only a real
// hang reaches it (see internal/testwait).
func hangBound() time.Duration { return testwait.Bound() }

// context returns a context that ends at the hang bound or with the test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound())
	t.Cleanup(cancel)
	return ctx
}

// Event builds the suite's event: id, key, and the body
// {"id":…,"key":…,"seq":…} that read-back functions return.
func Event(id, key string, seq int) *pipeline.Event {
	body := fmt.Appendf(nil, `{"id":%q,"key":%q,"seq":%d}`, id, key, seq)
	return &pipeline.Event{ID: id, Key: []byte(key), Payload: body, Body: body,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// uniquePrefix keeps the ids of one run apart from another's in a shared
// store.
func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("conf-%d", time.Now().UnixNano())
}
