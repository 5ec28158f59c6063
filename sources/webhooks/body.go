package webhooks

import (
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// byteBudget bounds the bytes all request bodies hold at once, read or
// being read: max_concurrent × max_body_bytes. A body takes from it as it
// grows, so a connection trickling a body holds what it sent, not a
// handling slot: slow unauthenticated senders cannot keep signed requests
// out (they would need to send max_concurrent full bodies).
type byteBudget struct {
	mu    sync.Mutex
	left  int64
	inUse prometheus.Gauge
}

func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	b.inUse.Add(float64(n))
	return true
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left += n
	b.inUse.Sub(float64(n))
}

// firstBodyChunk is the buffer a body starts with; it doubles as the body
// arrives, taking each growth from the budget.
const firstBodyChunk = 512

// readBody reads the request body, up to max_body_bytes, into a buffer
// whose capacity is taken from s.bodies; held is that capacity, to give
// back once the request is answered (also on error).
func (s *Source) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, herr *httpError) {
	limit := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, 0, reject(http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes", limit)
	}
	src := http.MaxBytesReader(w, r.Body, limit)
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			// Never beyond limit+1: MaxBytesReader returns at most limit
			// bytes, so a full buffer of limit+1 cannot happen.
			grow := min(max(firstBodyChunk, int64(cap(buf))), limit+1-int64(cap(buf)))
			if !s.bodies.take(grow) {
				return nil, held, reject(http.StatusServiceUnavailable, outcomeUnavailable, "too many request bodies being read, retry later")
			}
			held += grow
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, held, nil
		case err != nil:
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, held, reject(http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than %d bytes", limit)
			}
			return nil, held, badRequest("reading the body: %v", err)
		}
	}
}
