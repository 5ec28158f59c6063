package bench

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/avro"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/decode"
	"github.com/sluicehq/sluice/transforms/dedupe"
	"github.com/sluicehq/sluice/transforms/encode"
	"github.com/sluicehq/sluice/transforms/enrich"
	"github.com/sluicehq/sluice/transforms/filter"
)

// BenchmarkTransforms runs decode → enrich → dedupe (memory) → filter →
// encode (json: bodies pass as they are; avro: bare binary of the canonical
// schema, docs/canonical-event.avsc) over
// ~1 KB CRM-like events from the generator, calling the transforms directly
// in batches of 500 on one goroutine (no runner, no sink): one op is one
// event, so allocs/op is allocations per event in the transforms alone.
// Event generation happens outside the timer.
func BenchmarkTransforms(b *testing.B) {
	b.Run("encode=json", func(b *testing.B) { benchTransforms(b, encode.Config{Format: "json"}) })
	b.Run("encode=avro", func(b *testing.B) {
		benchTransforms(b, encode.Config{Format: "avro", Avro: avro.Config{SchemaFile: "../docs/canonical-event.avsc"}})
	})
}

func benchTransforms(b *testing.B, ec encode.Config) {
	const batchSize = 500
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	g := generate.NewGenerator(generate.Workload{Mix: generate.Mix{CRM: 1}, MinSize: 900, MaxSize: 1100, Entities: 100000, Seed: 1}, func() time.Time { return now })
	bc := pipeline.NewBuildContext("bench", "bench", nil, nil)
	dec, err := decode.NewJSON(bc, decode.Config{Format: "json", ID: "id", Time: "occurred_at"})
	if err != nil {
		b.Fatal(err)
	}
	enr, err := enrich.New(bc, enrich.Config{StripTags: true, Unknown: "fail"})
	if err != nil {
		b.Fatal(err)
	}
	var dc dedupe.Config
	dc.SetDefaults()
	dd, err := dedupe.New(bc, dc)
	if err != nil {
		b.Fatal(err)
	}
	flt, err := filter.New(bc, filter.Config{Keep: `type != "heartbeat" && entity.kind == "contact"`})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := encode.New(bc, ec)
	if err != nil {
		b.Fatal(err)
	}
	steps := []pipeline.Transform{dec, enr, dd, flt, enc}

	// Each batch is generated with the timer stopped, into a reused
	// buffer, so the timer and the CPU figure cover the transforms only.
	events := make([]pipeline.Event, batchSize)
	batch := make([]*pipeline.Event, 0, batchSize)
	var buf []byte
	var payloadBytes int
	var cpu time.Duration
	ctx := context.Background()
	passed := 0
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < b.N; start += batchSize {
		b.StopTimer()
		buf = buf[:0]
		batch = batch[:0]
		for i := 0; i < min(batchSize, b.N-start); i++ {
			events[i] = pipeline.Event{}
			buf = g.Next(&events[i], buf)
			payloadBytes += len(events[i].Payload)
			batch = append(batch, &events[i])
		}
		b.StartTimer()
		cpuBefore := processCPU()
		out := batch
		for _, s := range steps {
			out, err = s.Apply(ctx, out)
			if err != nil {
				b.Fatal(err)
			}
		}
		passed += len(out)
		dd.Settle(out, nil)
		cpu += processCPU() - cpuBefore
	}
	b.StopTimer()
	if passed == 0 {
		b.Fatal("no event passed")
	}
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(payloadBytes)/float64(b.N), "payload-bytes/event")
}
