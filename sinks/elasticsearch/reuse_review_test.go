package elasticsearch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	essink "github.com/sluicehq/sluice/sinks/elasticsearch"

	"github.com/sluicehq/sluice/pipeline"
)

// TestBulkBufferNotReusedWhileTransportWritesIt: a cluster may answer a
// bulk request before it has read the body (a 429 or 413 as soon as the
// headers are in, an auth error). net/http then returns the response
// while its write loop is still copying the body from the sink's buffer
// ("RoundTrip ... may [close the body] in a separate goroutine even after
// RoundTrip returns": callers reusing the body must wait for that Close).
// The sink kept the buffer for the next Write (reuse.Pool, before it a
// sync.Pool) as soon as Write returned, and the next Write encoded into
// it while the transport still read it: a data race, shown by -race.
func TestBulkBufferNotReusedWhileTransportWritesIt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			io.WriteString(w, esRoot)
			return
		}
		// Answer before reading the body, as a cluster shedding load does.
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, err429)
	}))
	defer srv.Close()
	s, _ := newSink(t, srv.URL, func(c *essink.Config) {
		c.MaxBatch = essink.MaxBatch{Events: 1000, Bytes: 64 << 20}
	})
	// 16 MiB a request: more than loopback socket buffers hold, so the
	// body is still being written when the answer comes.
	batch := func(fill string) []*pipeline.Event {
		out := make([]*pipeline.Event, 128)
		ts := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
		for i := range out {
			body := fmt.Sprintf(`{"id":"%s%d","pad":"%s"}`, fill, i, strings.Repeat(fill, 128<<10))
			out[i] = &pipeline.Event{ID: fmt.Sprintf("%s%d", fill, i), Time: ts, Payload: []byte(body), Body: []byte(body)}
		}
		return out
	}
	for _, fill := range []string{"a", "b", "c"} {
		if err := s.Write(context.Background(), batch(fill)); err == nil {
			t.Fatal("a 429 for the whole request was taken as stored")
		}
	}
}
