package mongodb

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// benchBatch is the i-th batch of n CRM-like events (~600 bytes each) about
// `contacts` entities.
func benchBatch(i, n, contacts int) []*pipeline.Event {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	notes := strings.Repeat("lorem ipsum ", 30)
	b := make([]*pipeline.Event, n)
	for j := range b {
		k := i*n + j
		at := t0.Add(time.Duration(k) * time.Second)
		body := fmt.Sprintf(`{"id":"evt_%d","source":"salesforce","type":"contact.updated","occurred_at":%q,`+
			`"data":{"Id":"003%06d","Email":"c%d@acme-corp.com","FirstName":"Ada","LastName":"Lovelace","Title":"CTO","Score":%d,"Tags":["priority","inbound"]},"notes":%q}`,
			k, at.Format(time.RFC3339Nano), k%contacts, k%contacts, k, notes)
		b[j] = &pipeline.Event{ID: fmt.Sprintf("evt_%d", k), Key: fmt.Appendf(nil, "c%d", k%contacts), Time: at, Body: []byte(body), Payload: []byte(body)}
	}
	return b
}

func benchConfig(mode, uri, db string) Config {
	var c Config
	c.SetDefaults()
	c.URI, c.Database, c.Mode = uri, db, mode
	c.Collection = *pipeline.MustParseTemplate("events")
	c.MaxBatch = 99 // FerretDB: one command stays under ~99 statements
	c.Parallelism = 1
	if mode == ModeUpsert {
		c.ID = "data.Id"
		c.Update = UpdateConfig{
			Set:          map[string]string{"email": "data.Email", "title": "data.Title", "score": "data.Score"},
			SetOnInsert:  map[string]string{"first_seen": "$time"},
			Inc:          map[string]int64{"events": 1},
			Max:          map[string]string{"last_seen": "$time"},
			Push:         map[string]PushConfig{"timeline": {Keep: 20, Value: map[string]string{"id": "$id", "type": "type", "at": "$time"}}},
			AppliedField: "_applied", AppliedKeep: 100,
		}
	}
	return c
}

// BenchmarkWrite measures documents/s through Write against the test
// server ("write"), and the client's share alone ("encode": JSON to BSON
// and write models, or insert mode's command, no round trip). The difference is network + server.
//
//	SLUICE_TESTENV_REQUIRED=1 go test -run '^$' -bench . -benchtime 30x -cpuprofile cpu.out ./sinks/mongodb/
func BenchmarkWrite(b *testing.B) {
	const n = 99
	for _, mode := range []string{ModeInsert, ModeUpsert} {
		b.Run(mode+"/encode", func(b *testing.B) {
			s, err := New(pipelinetest.BuildContext(), benchConfig(mode, "mongodb://127.0.0.1:1/", "bench"))
			if err != nil {
				b.Fatal(err)
			}
			batches := make([][]*pipeline.Event, b.N)
			for i := range batches {
				batches[i] = benchBatch(i, n, 200)
			}
			var arena, cmd []byte
			ops := make([]op, 0, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				arena, ops = arena[:0], ops[:0]
				for _, ev := range batches[i] {
					_, o, err := s.build(ev, &arena)
					if err != nil {
						b.Fatal(err)
					}
					ops = append(ops, o)
				}
				if s.insertCmd {
					cmd, _ = s.appendInsert(cmd[:0], "events", ops)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "docs/s")
		})
		b.Run(mode+"/write", func(b *testing.B) {
			uri := testenv.MongoURI(b)
			c := benchConfig(mode, uri, fmt.Sprintf("bench_%s_%d", mode, time.Now().UnixNano()))
			s, err := New(pipelinetest.BuildContext(), c)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx := context.Background()
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			batches := make([][]*pipeline.Event, b.N)
			for i := range batches {
				batches[i] = benchBatch(i, n, 200)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := s.Write(ctx, batches[i]); err != nil {
					b.Fatal(err)
				}
			}
			// The client's CPU (user+system of this process, the server
			// runs elsewhere) per document: steadier than ns/op, which
			// is mostly the server, on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n), "cpu-ns/doc")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "docs/s")
			// Where the time goes: the bulk write round trip and (upsert)
			// the applied-events query, both mostly server time; the rest
			// of ns/op is the client (see the encode benchmark).
			b.ReportMetric(histSum(b, s.m.latency)/float64(b.N)*1e3, "bulk-ms/op")
			b.ReportMetric(histSum(b, s.m.check)/float64(b.N)*1e3, "check-ms/op")
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

func histSum(b *testing.B, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum()
}
