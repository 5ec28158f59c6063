package enrich

import (
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
)

// BenchmarkEnrich maps one event per op: the synthetic generator's mix of
// all vendors, its CRM-only mix (the bench/ workload) and the recorded
// vendor payloads of every object type.
func BenchmarkEnrich(b *testing.B) {
	generated := func(mix generate.Mix) []*pipeline.Event {
		g := generate.NewGenerator(generate.Workload{Mix: mix, MinSize: 900, MaxSize: 1100, Entities: 100000, Seed: 1}, func() time.Time { return fixed })
		evs := make([]*pipeline.Event, 1000)
		for i := range evs {
			ev := &pipeline.Event{}
			g.Next(ev, nil)
			ev.Body = ev.Payload
			evs[i] = ev
		}
		return evs
	}
	sets := []struct {
		name string
		evs  []*pipeline.Event
	}{
		{"generated", generated(generate.Mix{CRM: 1, ATS: 1, Email: 1})},
		{"generated-crm", generated(generate.Mix{CRM: 1})},
		{"recorded", recordedEvents(b)},
	}
	for _, s := range sets {
		b.Run(s.name, func(b *testing.B) {
			e, err := New(pipeline.NewBuildContext("bench", "test", nil, nil), Config{StripTags: true, Unknown: "fail"})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			var bt batch
			for b.Loop() {
				// As Apply does per batch: batches of 500 events.
				if i%500 == 0 {
					next := make([]*pipeline.Event, 500)
					for k := range next {
						next[k] = s.evs[(i+k)%len(s.evs)]
					}
					bt = newBatch(next, fixed)
				}
				ev := s.evs[i%len(s.evs)]
				i++
				ev.Body = ev.Payload
				if err := e.enrich(ev, &bt); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time (user+system of the process) per event: steadier
			// than ns/op on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
