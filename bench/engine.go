package bench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/decode"
)

// discard is a sink that stores nothing, so the engine is measured alone.
type discard struct {
	events atomic.Int64
	bytes  atomic.Int64
}

func (d *discard) Write(_ context.Context, batch []*pipeline.Event) error {
	n := 0
	for _, ev := range batch {
		n += len(ev.Body)
	}
	d.events.Add(int64(len(batch)))
	d.bytes.Add(int64(n))
	return nil
}

func (d *discard) Close(context.Context) error { return nil }

// EngineResult is the engine profile's figures.
type EngineResult struct {
	Events         int64   `json:"events"`
	Seconds        float64 `json:"seconds"`
	EventsPerSec   float64 `json:"events_per_second"`
	CPUPerMillion  float64 `json:"cpu_seconds_per_million"`
	AllocsPerEvent float64 `json:"allocs_per_event"`
	BytesPerEvent  float64 `json:"bytes_allocated_per_event"`
}

// RunEngine runs n generated events through generate → decode → a
// discarding sink in this process: the cost of the engine with no I/O.
func RunEngine(ctx context.Context, n int64) (*EngineResult, error) {
	sink := &discard{}
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	decode.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(`name: engine
source: {generate: {count: %d, duplicates: 0, poison: 0}}
transforms: [{decode: {format: json, id: id, time: occurred_at}}]
sinks: [{discard: {}}]
batch: {max_events: 500, max_wait: 50ms}
`, n)
	cfg, err := pipeline.Load("engine.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, _ := rusage()
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	cpu1, _ := rusage()
	runtime.ReadMemStats(&m1)
	if got := sink.events.Load(); got != n {
		return nil, fmt.Errorf("engine: %d of %d events reached the sink", got, n)
	}
	return &EngineResult{
		Events: n, Seconds: elapsed.Seconds(), EventsPerSec: float64(n) / elapsed.Seconds(),
		CPUPerMillion:  (cpu1 - cpu0).Seconds() / float64(n) * 1e6,
		AllocsPerEvent: float64(m1.Mallocs-m0.Mallocs) / float64(n),
		BytesPerEvent:  float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n),
	}, nil
}
