package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// toySink is the sink of docs/components.md: a key-value store in memory
// that holds one JSON object per event id.
type toySink struct {
	mu   sync.Mutex
	docs map[string][]byte
	down bool // the server is unreachable
	// mapsBack false makes it the broken sink of TestSuiteCatchesBadSink:
	// it fails the whole batch instead of naming the failing events.
	mapsBack bool
}

var errDown = errors.New("toy store unreachable")

// toyConfig is the toy sink's YAML.
type toyConfig struct {
	Down bool `yaml:"down"` // the server is unreachable
}

// newToySink is the constructor of docs/components.md's shape.
func newToySink(bc pipeline.BuildContext, c toyConfig) (*toySink, error) {
	bc.Logger.Debug("toy sink built", "pipeline", bc.Pipeline) // never nil
	return &toySink{docs: map[string][]byte{}, down: c.Down, mapsBack: true}, nil
}

func (s *toySink) Write(ctx context.Context, batch []*pipeline.Event) error {
	if err := ctx.Err(); err != nil {
		return err // retryable: the events are not at fault
	}
	if s.down {
		return fmt.Errorf("write %d events: %w", len(batch), errDown)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	be := pipeline.NewBatchError()
	for i, ev := range batch {
		if !gjson.ValidBytes(ev.Body) || !gjson.ParseBytes(ev.Body).IsObject() {
			err := pipeline.Permanent(fmt.Errorf("event %s: body is not a JSON object", ev.ID))
			if !s.mapsBack {
				return err
			}
			be.Fail(i, err)
			continue
		}
		s.docs[ev.ID] = append([]byte(nil), ev.Body...)
	}
	return be.Err()
}

func (s *toySink) Close(context.Context) error { return nil }

func (s *toySink) readBack(context.Context) ([]conformance.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []conformance.Record
	for id, body := range s.docs {
		recs = append(recs, conformance.Record{ID: id, Body: body})
	}
	return recs, nil
}

func toyFactory(mapsBack bool) conformance.SinkFactory {
	return func(t *testing.T) *conformance.SinkUnderTest {
		s, err := newToySink(pipelinetest.BuildContext(), toyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		s.mapsBack = mapsBack
		return &conformance.SinkUnderTest{
			Sink:     s,
			Kind:     conformance.Store,
			ReadBack: s.readBack,
			Poison: func(id, key string) *pipeline.Event {
				return &pipeline.Event{ID: id, Key: []byte(key), Body: []byte(`[1,2]`)}
			},
			Unreachable: func(t *testing.T) pipeline.Sink {
				down, err := newToySink(pipelinetest.BuildContext(), toyConfig{Down: true})
				if err != nil {
					t.Fatal(err)
				}
				return down
			},
		}
	}
}

func TestToySink(t *testing.T) { conformance.TestSink(t, toyFactory(true)) }

// TestSuiteCatchesBadSink runs the suite on a sink that fails a whole
// batch for one poison event, in a child process, and expects the
// partial-failure case to fail there.
func TestSuiteCatchesBadSink(t *testing.T) {
	suiteCatches(t, "CONFORMANCE_BAD_SINK", "a sink that fails whole batches for one poison event",
		func(t *testing.T) { conformance.TestSink(t, toyFactory(false)) }, "PartialFailureMapsBack", "IdempotentRewrite")
}

// TestMemorySource runs the source table on pipelinetest's in-memory
// source: finite, without a checkpoint.
func TestMemorySource(t *testing.T) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		var mu sync.Mutex
		var batches [][]*pipeline.Event
		return &conformance.SourceUnderTest{
			Finite: true,
			Feed: func(t *testing.T, n int) []string {
				mu.Lock()
				defer mu.Unlock()
				var ids []string
				var b []*pipeline.Event
				for i := range n {
					ev := conformance.Event(fmt.Sprintf("%s-%d-%d", t.Name(), len(batches), i), "k", i)
					b = append(b, ev)
					ids = append(ids, ev.ID)
					if len(b) == 4 {
						batches, b = append(batches, b), nil
					}
				}
				if len(b) > 0 {
					batches = append(batches, b)
				}
				return ids
			},
			Open: func(*testing.T) pipeline.Source {
				return pipelinetest.NewFuncSource(func(i int) []*pipeline.Event {
					mu.Lock()
					defer mu.Unlock()
					if i < len(batches) {
						return batches[i]
					}
					return nil
				})
			},
		}
	})
}
