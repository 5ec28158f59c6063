package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/decode"
)

// discard is a sink that stores nothing, so the benchmark measures the
// engine and its transforms alone.
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

// BenchmarkEngine runs generate → decode → discard through the real
// runner: one op is one event. Reported: events/s and, with -benchmem,
// allocs/op = allocations per event (generation included).
func BenchmarkEngine(b *testing.B) {
	sink := &discard{}
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	decode.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(`name: engine-bench
source:
  generate: {count: %d, duplicates: 0, poison: 0}
transforms:
  - decode: {format: json, time: occurred_at}
sinks:
  - discard: {}
batch: {max_events: 500, max_wait: 50ms}
`, b.N)
	cfg, err := pipeline.Load("bench.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpuBefore := processCPU()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - cpuBefore
	b.StopTimer()
	if got := sink.events.Load(); got != int64(b.N) {
		b.Fatalf("sink got %d events, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(sink.bytes.Load())/float64(b.N), "bytes/event")
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/Mevents")
}

// processCPU is the user+system CPU time this process has used: the design
// targets are CPU-seconds per million events, not wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
