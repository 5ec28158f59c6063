package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/decode"
)

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
	p := pipelinetest.Build(b, "bench.yaml", doc, reg)
	cpu := runTimed(b, p)
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
	cpu, _ := rusage()
	return cpu
}

// runTimed runs p to its end, timing only the run, and returns the CPU
// time this process used meanwhile.
func runTimed(b *testing.B, p *pipeline.Pipeline) time.Duration {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	cpuBefore := processCPU()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	return processCPU() - cpuBefore
}

// driveToSink runs p until sink has b.N events, timing only that, and
// reports events/s and this process's CPU seconds per million events.
func driveToSink(b *testing.B, ctx context.Context, stop context.CancelFunc, p *pipeline.Pipeline, sink *discard) {
	b.Helper()
	b.ReportAllocs()
	runtime.GC() // the set-up's garbage (a topic's fill) is not the run's
	b.ResetTimer()
	stopProfile := timedCPUProfile(b)
	allocs := countAllocs()
	cpuBefore := processCPU()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for sink.events.Load() < int64(b.N) {
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cpu := processCPU() - cpuBefore
	mallocs := allocs()
	stopProfile()
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(mallocs)/float64(b.N), "allocs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/Mevents")
}

// timedCPUProfile writes a CPU profile of the timed part alone (not the
// set-up, e.g. filling a topic, which -test.cpuprofile would include) to
// the file SLUICE_BENCH_CPUPROFILE names, if set; the returned function
// stops it. Do not combine it with -test.cpuprofile.
func timedCPUProfile(b *testing.B) func() {
	b.Helper()
	path := os.Getenv("SLUICE_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// countAllocs returns a function that tells how many heap allocations
// the process made since: allocs/op of -benchmem rounded to an integer
// hides the per-batch part.
func countAllocs() func() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.Mallocs
	return func() uint64 {
		runtime.ReadMemStats(&m)
		return m.Mallocs - before
	}
}
