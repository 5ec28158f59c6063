package elasticsearch

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// benchEvents returns n events with ~1 KB JSON bodies.
func benchEvents(n int) []*pipeline.Event {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	out := make([]*pipeline.Event, n)
	for i := range out {
		body := fmt.Sprintf(`{"id":"evt-%08d","type":"email.delivered","source":"sendgrid","occurred_at":"2026-11-23T10:00:00Z","contact":{"id":"c-%d","email":"person%d@example.com"},"subject":%q}`,
			i, i%5000, i, strings.Repeat("quarterly pipeline review ", 34))
		out[i] = &pipeline.Event{ID: fmt.Sprintf("evt-%08d", i), Time: ts.Add(time.Duration(i) * time.Millisecond), Body: []byte(body)}
	}
	return out
}

func benchSink(b testing.TB) *Sink {
	var c Config
	c.SetDefaults()
	c.URLs = []string{"http://127.0.0.1:1"}
	c.Index = *pipeline.MustParseTemplate("crm-events-{2006.01.02}")
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkEncode is the NDJSON building alone: action line + body copy.
func BenchmarkEncode(b *testing.B) {
	s := benchSink(b)
	batch := benchEvents(500)
	w := &work{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w.errs = append(w.errs[:0], make([]error, len(batch))...)
		s.encode(w, batch)
	}
	b.SetBytes(int64(len(w.buf)))
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkParseResponse is the item loop over a 500-item response as
// Elasticsearch sends it with the sink's filter_path, with and without
// errors (the slow path reads every item's error).
func BenchmarkParseResponse(b *testing.B) {
	for _, withErrors := range []bool{false, true} {
		b.Run(fmt.Sprintf("errors=%t", withErrors), func(b *testing.B) {
			s := benchSink(b)
			var sb strings.Builder
			fmt.Fprintf(&sb, `{"errors":%t,"items":[`, withErrors)
			for i := range 500 {
				if i > 0 {
					sb.WriteByte(',')
				}
				if withErrors && i%50 == 0 {
					sb.WriteString(`{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}}}`)
				} else {
					sb.WriteString(`{"index":{"result":"created","status":201}}`)
				}
			}
			sb.WriteString("]}")
			resp := []byte(sb.String())
			items := make([]item, 500)
			for i := range items {
				items[i].idx = i
			}
			w := &work{errs: make([]error, 500)}
			b.ReportAllocs()
			for b.Loop() {
				s.items(w, items, resp)
			}
			b.SetBytes(int64(len(resp)))
		})
	}
}
