// Package pipelinetest has in-memory sources and sinks that record what the
// runner did to them, for testing the engine and components.
package pipelinetest

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// Ack is what happened to one source batch.
type Ack struct {
	Acked bool
	Err   error
	// Calls counts ack invocations; the contract is exactly one.
	Calls int
}

// Source serves batches from memory and records their acks.
type Source struct {
	mu      sync.Mutex
	next    func(i int) []*pipeline.Event // nil result: exhausted
	batches [][]*pipeline.Event
	acks    []Ack
	// BlockWhenDone makes Read wait for the context after the last batch
	// instead of returning io.EOF, like a stream with no new records.
	BlockWhenDone bool
	reads         atomic.Int64
	events        atomic.Int64
	ackedCh       chan struct{}
	closed        atomic.Bool
}

// NewSource serves the given batches, then io.EOF.
func NewSource(batches ...[]*pipeline.Event) *Source {
	return NewFuncSource(func(i int) []*pipeline.Event {
		if i < len(batches) {
			return batches[i]
		}
		return nil
	})
}

// NewFuncSource serves next(0), next(1), … until next returns nil.
func NewFuncSource(next func(i int) []*pipeline.Event) *Source {
	return &Source{next: next, ackedCh: make(chan struct{}, 1)}
}

// Read serves the next batch.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	i := len(s.batches)
	b := s.next(i)
	if b == nil {
		s.mu.Unlock()
		if s.BlockWhenDone {
			<-ctx.Done()
			return nil, nil, ctx.Err()
		}
		return nil, nil, io.EOF
	}
	s.batches = append(s.batches, b)
	s.acks = append(s.acks, Ack{})
	s.mu.Unlock()
	s.reads.Add(1)
	s.events.Add(int64(len(b)))
	return b, func(err error) {
		s.mu.Lock()
		a := &s.acks[i]
		a.Calls++
		if a.Calls == 1 {
			a.Acked, a.Err = true, err
		}
		s.mu.Unlock()
		select {
		case s.ackedCh <- struct{}{}:
		default:
		}
	}, nil
}

// Close records that the source was closed.
func (s *Source) Close(context.Context) error { s.closed.Store(true); return nil }

// Closed reports whether Close was called.
func (s *Source) Closed() bool { return s.closed.Load() }

// EventsRead is how many events Read has returned.
func (s *Source) EventsRead() int64 { return s.events.Load() }

// Acks returns a copy of every batch's ack record, in read order.
func (s *Source) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// Batch returns the i-th batch read.
func (s *Source) Batch(i int) []*pipeline.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[i]
}

// WaitAcked blocks until at least n batches are acked or ctx ends.
func (s *Source) WaitAcked(ctx context.Context, n int) bool {
	for {
		acked := 0
		for _, a := range s.Acks() {
			if a.Acked {
				acked++
			}
		}
		if acked >= n {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-s.ackedCh:
		}
	}
}

// Write is one event a Sink stored.
type Write struct {
	ID   string
	Key  string
	Body string
}

// Sink records what it stores. WriteFunc, when set, decides each call's
// outcome: an error fails the call (a *pipeline.BatchError fails only the
// events it names, the rest are stored).
type Sink struct {
	WriteFunc func(ctx context.Context, call int, batch []*pipeline.Event) error

	mu        sync.Mutex
	writes    []Write
	calls     int
	active    atomic.Int64
	maxActive atomic.Int64
	closed    atomic.Bool
}

// Write stores batch, subject to WriteFunc.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		m := s.maxActive.Load()
		if n <= m || s.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	var err error
	if s.WriteFunc != nil {
		err = s.WriteFunc(ctx, call, batch)
	}
	failed := map[int]bool{}
	if err != nil {
		be, ok := err.(*pipeline.BatchError)
		if !ok {
			return err
		}
		for _, f := range be.Failures {
			failed[f.Index] = true
		}
	}
	s.mu.Lock()
	for i, ev := range batch {
		if !failed[i] {
			body := ev.Body
			if body == nil {
				body = ev.Payload
			}
			s.writes = append(s.writes, Write{ID: ev.ID, Key: string(ev.Key), Body: string(body)})
		}
	}
	s.mu.Unlock()
	return err
}

// Close records that the sink was closed.
func (s *Sink) Close(context.Context) error { s.closed.Store(true); return nil }

// Closed reports whether Close was called.
func (s *Sink) Closed() bool { return s.closed.Load() }

// Writes returns every stored event in store order (repeats included).
func (s *Sink) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

// IDs returns the distinct stored ids.
func (s *Sink) IDs() map[string]bool {
	ids := map[string]bool{}
	for _, w := range s.Writes() {
		ids[w.ID] = true
	}
	return ids
}

// Calls is how many times Write was called.
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// MaxConcurrent is the most Write calls that ran at once.
func (s *Sink) MaxConcurrent() int { return int(s.maxActive.Load()) }

// Register adds a source named "mem" serving src and sinks "mem" (config
// `{index: N}`) serving sinks[N], so tests can write pipelines in YAML.
func Register(r *pipeline.Registry, src pipeline.Source, sinks ...pipeline.Sink) {
	pipeline.RegisterSource(r, "mem", "test source", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) {
		return src, nil
	})
	pipeline.RegisterSink(r, "mem", "test sink", func(_ pipeline.BuildContext, c *SinkConfig) (pipeline.Sink, error) {
		return sinks[c.Index], nil
	})
}

// SinkConfig picks which of Register's sinks a spec means.
type SinkConfig struct {
	Index int `yaml:"index"`
}

// TransformFunc adapts a function to pipeline.Transform.
type TransformFunc func(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error)

// Apply calls f.
func (f TransformFunc) Apply(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	return f(ctx, in)
}

// BuildContext is what a test passes to a component's New: pipeline
// "test", its logs discarded, its metrics in a registry of its own (so two
// components built in one test do not collide). Set Logger or Metrics on
// the result to watch either.
func BuildContext() pipeline.BuildContext {
	return pipeline.NewBuildContext("test", "test", nil, nil)
}

// StartSource starts src when it is a pipeline.Starter (failing t on an
// error) and closes it when t ends, for a test that reads src itself
// instead of running a pipeline. The close waits at most
// testwait.Bound(), which only a hang reaches.
func StartSource(t testing.TB, src pipeline.Source) {
	t.Helper()
	if s, ok := src.(pipeline.Starter); ok {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		defer cancel()
		_ = src.Close(ctx)
	})
}
