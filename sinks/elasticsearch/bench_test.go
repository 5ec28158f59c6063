package elasticsearch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
)

func benchBatch(n, offset int) ([]*pipeline.Event, int) {
	out := make([]*pipeline.Event, n)
	size := 0
	for i := range out {
		id := "evt-" + strconv.Itoa(offset+i)
		body := fmt.Sprintf(`{"id":%q,"type":"email.delivered","source":"sendgrid","occurred_at":"2026-11-23T10:00:00Z","contact":{"id":"c-%d","email":"person%d@example.com"},"subject":%q}`,
			id, i%5000, i, strings.Repeat("quarterly pipeline review ", 34))
		size += len(body)
		out[i] = &pipeline.Event{ID: id, Time: day.Add(time.Duration(i) * time.Millisecond), Body: []byte(body)}
	}
	return out, size
}

// BenchmarkWriteHTTPTest is the whole Write (encode, HTTP, response parse)
// against an in-process server that drains the body and answers a
// realistic 500-item response: our CPU and allocations per document.
func BenchmarkWriteHTTPTest(b *testing.B) {
	for _, comp := range []string{"none", "gzip"} {
		b.Run("compression="+comp, func(b *testing.B) {
			const n = 500
			var sb strings.Builder
			sb.WriteString(`{"errors":false,"took":4,"items":[`)
			for i := range n {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(`{"index":{"result":"created","status":201}}`)
			}
			sb.WriteString("]}")
			resp := []byte(sb.String())
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				_, _ = w.Write(resp)
			}))
			defer srv.Close()
			s, _ := newSink(b, srv.URL, func(c *essink.Config) { c.Compression = comp })
			batch, size := benchBatch(n, 0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "docs/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/doc")
		})
	}
}

// BenchmarkWriteServer indexes 500-document batches into the test stack's
// Elasticsearch-API server (OpenSearch by default).
func BenchmarkWriteServer(b *testing.B) {
	url, user, pass := testenv.ElasticsearchURL(b)
	index := "sluice-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s, _ := newSink(b, url, func(c *essink.Config) {
		c.Username, c.Password = user, pass
		c.Flavor = testenv.ElasticsearchFlavor()
		c.Index = *pipeline.MustParseTemplate(index)
		c.Timeout = pipeline.Duration(60 * time.Second)
	})
	const n = 500
	b.ReportAllocs()
	i := 0
	var total int
	for b.Loop() {
		batch, size := benchBatch(n, i*n)
		total += size
		i++
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e6, "MB/s")
}
