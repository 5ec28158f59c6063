package pipeline_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// dropRepeats drops the events marked as redelivered duplicates, as dedupe
// drops a repeat (whose event time is its original's).
type dropRepeats struct{}

func (dropRepeats) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	out := in[:0:0]
	for _, ev := range in {
		if _, repeat := ev.Meta.Get("repeat"); !repeat {
			out = append(out, ev)
		}
	}
	return out, nil
}

// TestEndToEndLatencyLeavesOutDroppedEvents: sluice_end_to_end_latency_seconds
// and the settle observer (the bench's latency) measure the events that
// were written or dead-lettered, not the ones a transform dropped. A
// vendor's redelivery of hour-old events that dedupe drops reached no
// store: counted, it made the p99 the redelivery's age (and fired
// SluiceEndToEndLatencyHigh), and in `sluice bench` the 2% duplicates,
// which repeat an event up to ~1 s old, were the whole p99.
func TestEndToEndLatencyLeavesOutDroppedEvents(t *testing.T) {
	evs := events("e", 10, oneKey)
	for i, ev := range evs {
		if i%2 == 1 { // a redelivered duplicate of an event a day old
			ev.Time = ev.Time.Add(-24 * time.Hour)
			ev.Meta = pipeline.Meta{{Key: "repeat", Value: "yes"}}
		}
	}
	src := pipelinetest.NewSource(evs)
	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, sink)
	pipeline.RegisterTransform(reg, "droprepeats", "drops repeats", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) { return dropRepeats{}, nil })
	cfg, err := pipeline.Load("t.yaml", []byte("name: lat\nsource: {mem: {}}\ntransforms: [{droprepeats: {}}]\nsinks: [{mem: {index: 0}}]\nbatch: {max_wait: 1ms}\n"), reg, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var observed []string
	prom := prometheus.NewRegistry()
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithMetricsRegisterer(prom),
		pipeline.WithSettleObserver(func(events []*pipeline.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range events {
				observed = append(observed, ev.ID)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.IDs()); got != 5 {
		t.Fatalf("%d written, want the 5 recent events", got)
	}
	count, sum := latencyCountSum(t, prom)
	// One dropped event alone would add a day (86,400 s): the written ones
	// stay far below that however slow the machine.
	if count != 5 || sum >= 86400 {
		t.Errorf("end-to-end latency: %v events, %.0f s in all; want the 5 written, not the 5 dropped day-old ones", count, sum)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(observed, " "); got != "e-0 e-2 e-4 e-6 e-8" {
		t.Errorf("settle observer saw %q, want the written events only", got)
	}
}

// latencyCountSum reads sluice_end_to_end_latency_seconds's count and sum.
func latencyCountSum(t *testing.T, g prometheus.Gatherer) (uint64, float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sluice_end_to_end_latency_seconds" && len(mf.GetMetric()) == 1 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no sluice_end_to_end_latency_seconds series")
	return 0, 0
}
