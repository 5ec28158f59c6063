package pipelinetest_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

const runDoc = "name: t\nsource: {mem: {}}\nsinks: [{mem: {index: 0}}]\nbatch: {max_events: 10, max_wait: 5ms}\nretry: {initial_interval: 1ms, max_interval: 2ms, max_attempts: 1}\n"

func batchOf(prefix string, n int) []*pipeline.Event {
	var evs []*pipeline.Event
	for i := range n {
		evs = append(evs, &pipeline.Event{ID: prefix + strconv.Itoa(i), Key: []byte("k"), Payload: []byte("{}")})
	}
	return evs
}

// TestRun: each way of running a pipeline from YAML ends as it says and
// hands back what Run returned — nil for a finite source read to its end
// or a run stopped, the sink's failure for a run that failed — with the
// source's events in the sink and every component closed.
func TestRun(t *testing.T) {
	refused := errors.New("store refused")
	for _, tc := range []struct {
		name    string
		block   bool // the source blocks at its end instead of io.EOF
		failing bool // the sink refuses every write for good
		run     func(t *testing.T, reg *pipeline.Registry, src *pipelinetest.Source) error
		wantErr error // nil: Run returned nil
	}{
		{"RunToEnd", false, false, func(t *testing.T, reg *pipeline.Registry, _ *pipelinetest.Source) error {
			return pipelinetest.RunToEnd(t, "t.yaml", runDoc, reg)
		}, nil},
		{"RunToEnd of a failing run", false, true, func(t *testing.T, reg *pipeline.Registry, _ *pipelinetest.Source) error {
			return pipelinetest.RunToEnd(t, "t.yaml", runDoc, reg)
		}, refused},
		{"Start then Wait", false, false, func(t *testing.T, reg *pipeline.Registry, _ *pipelinetest.Source) error {
			return pipelinetest.Start(t, "t.yaml", runDoc, reg).Wait(t)
		}, nil},
		{"Start then Stop", true, false, func(t *testing.T, reg *pipeline.Registry, src *pipelinetest.Source) error {
			r := pipelinetest.Start(t, "t.yaml", runDoc, reg)
			if !src.WaitAcked(t.Context(), 2) {
				t.Fatal("the batches were not acked before the test ended")
			}
			select {
			case <-r.Done():
				t.Fatal("Done closed while the source still blocks")
			default:
			}
			err := r.Stop(t)
			select {
			case <-r.Done():
			default:
				t.Error("Done still open after Stop returned")
			}
			if again := r.Stop(t); again != err {
				t.Errorf("a second Stop returned %v, the first %v", again, err)
			}
			return err
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pipelinetest.NewSource(batchOf("a", 3), batchOf("b", 2))
			src.BlockWhenDone = tc.block
			sink := &pipelinetest.Sink{}
			if tc.failing {
				sink.WriteFunc = func(context.Context, int, []*pipeline.Event) error { return pipeline.Permanent(refused) }
			}
			reg := pipeline.NewRegistry()
			pipelinetest.Register(reg, src, sink)
			err := tc.run(t, reg, src)
			if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("Run returned %v, want %v", err, tc.wantErr)
			}
			if !src.Closed() || !sink.Closed() {
				t.Errorf("source closed %v, sink closed %v: want both closed when the run ended", src.Closed(), sink.Closed())
			}
			if tc.failing {
				return
			}
			if n := len(sink.IDs()); n != 5 {
				t.Errorf("%d events in the sink, want 5", n)
			}
		})
	}
}
