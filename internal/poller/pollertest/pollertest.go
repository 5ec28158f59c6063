// Package pollertest runs a source (the pollers, the webhooks source) in a
// real pipeline with a memory sink, for the connectors' tests.
package pollertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// Run is one running pipeline: a source under test → Sink. Stop and Wait
// are pipelinetest.Run's.
type Run struct {
	*pipelinetest.Run
	Sink *pipelinetest.Sink
}

// Start builds `name: test, source: {<sourceYAML>}` with register's
// components and a memory sink, and runs it until Stop.
func Start(t *testing.T, register func(*pipeline.Registry), sourceYAML string, sink *pipelinetest.Sink) *Run {
	t.Helper()
	if sink == nil {
		sink = &pipelinetest.Sink{}
	}
	reg := pipeline.NewRegistry()
	register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf(`name: poller-test
source:
%s
sinks: [{mem: {index: 0}}]
batch: {max_events: 100, max_wait: 5ms}
retry: {initial_interval: 5ms, max_interval: 20ms, max_attempts: 2}
delivery: {shutdown_timeout: 5s}
`, sourceYAML)
	return &Run{Run: pipelinetest.Start(t, "poller-test.yaml", doc, reg), Sink: sink}
}

// WaitFor polls cond until it holds, bounded only against a hang
// (testwait.Bound).
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.ForEvery(t, 10*time.Millisecond, what, cond, nil)
}

// Envelope is the payload every polling source writes.
type Envelope = envelope.Envelope

// Envelopes decodes every write, in store order; the bool map counts
// writes per event ID.
func Envelopes(t *testing.T, s *pipelinetest.Sink) ([]Envelope, map[string]int) {
	t.Helper()
	var out []Envelope
	n := map[string]int{}
	for _, w := range s.Writes() {
		var e Envelope
		if err := json.Unmarshal([]byte(w.Body), &e); err != nil {
			t.Fatalf("payload is not an envelope: %v: %s", err, w.Body)
		}
		if e.ID != w.ID || e.Key != w.Key {
			t.Fatalf("envelope id/key %q/%q differ from the event's %q/%q", e.ID, e.Key, w.ID, w.Key)
		}
		out = append(out, e)
		n[e.ID]++
	}
	return out, n
}

// HasAll reports whether s holds a write of every id in want.
func HasAll(s *pipelinetest.Sink, want map[string]bool) bool {
	got := s.IDs()
	for id := range want {
		if !got[id] {
			return false
		}
	}
	return true
}

// FailingSink is a memory sink whose writes succeed up to the failFrom-th
// call (counting from 0) and fail permanently from it on: a store that
// rejects, with no dead-letter sink, stops the pipeline.
func FailingSink(failFrom int) *pipelinetest.Sink {
	return &pipelinetest.Sink{WriteFunc: func(_ context.Context, call int, _ []*pipeline.Event) error {
		if call >= failFrom {
			return pipeline.Permanent(errors.New("store rejected the batch"))
		}
		return nil
	}}
}

// Answer is a vendor API stand-in that gives every request the same
// answer: the headers hdr, status and body (a rate-limit test's one
// case). It is closed when t ends.
func Answer(t *testing.T, status int, hdr map[string]string, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}
