package elasticsearch

// send.go sends encoded items as bulk requests: max_batch at a time, halving
// on 413.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicehq/sluice/pipeline"
)

// sendGroup sends one group's items in order, max_batch at a time.
func (s *Sink) sendGroup(ctx context.Context, w *work, items []item, resp *bytes.Buffer) {
	for len(items) > 0 {
		n, size := 0, 0
		for n < len(items) && n < s.cfg.MaxBatch.Events {
			sz := items[n].end - items[n].start
			if n > 0 && size+sz > int(s.cfg.MaxBatch.Bytes) {
				break
			}
			size += sz
			n++
		}
		if err := s.send(ctx, w, items[:n], resp); err != nil {
			// No answer: the cluster is down or unreachable. The rest of
			// the group would wait out the same failure; fail it now.
			s.failAll(w, items[n:], err, "error")
			return
		}
		items = items[n:]
	}
}

// send is one bulk request of contiguous items; a 413 splits it in
// halves. It returns the transport error when the request got no answer.
func (s *Sink) send(ctx context.Context, w *work, items []item, resp *bytes.Buffer) error {
	body := w.buf[items[0].start:items[len(items)-1].end]
	status, err := s.bulk(ctx, body, resp)
	switch {
	case err != nil:
		s.failAll(w, items, err, "error")
		return err
	case status == http.StatusRequestEntityTooLarge:
		if len(items) == 1 {
			w.errs[items[0].idx] = pipeline.Permanent(fmt.Errorf("document of %d bytes is too large for the cluster (413 on its own; raise http.max_content_length or shrink it)", len(body)))
			s.m.items.WithLabelValues("failed", "413").Inc()
			return nil
		}
		half := len(items) / 2
		if err := s.send(ctx, w, items[:half], resp); err != nil {
			s.failAll(w, items[half:], err, "error")
			return err
		}
		return s.send(ctx, w, items[half:], resp)
	case status >= 200 && status < 300:
		s.items(w, items, resp.Bytes())
	default:
		err := &requestError{status: status, reason: errorSummary(resp.Bytes())}
		s.failAll(w, items, err, strconv.Itoa(status))
	}
	return nil
}

func (s *Sink) failAll(w *work, items []item, err error, status string) {
	s.ready.Set(err)
	for _, it := range items {
		w.errs[it.idx] = err
	}
	s.m.items.WithLabelValues("retry", status).Add(float64(len(items)))
}

// bulk posts body and reads the response into resp. err is a transport
// failure; any HTTP answer is a status.
func (s *Sink) bulk(ctx context.Context, body []byte, resp *bytes.Buffer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout.D())
	defer cancel()
	t0 := time.Now()
	res, err := esapi.BulkRequest{
		Body:       bytes.NewReader(body),
		Pipeline:   s.cfg.Pipeline,
		FilterPath: s.filter,
	}.Do(ctx, s.perform)
	s.m.sentBytes.Add(float64(len(body)))
	if err != nil {
		s.m.latency.Observe(time.Since(t0).Seconds())
		s.m.requests.WithLabelValues("error").Inc()
		return 0, &transportError{err: err}
	}
	resp.Reset()
	_, err = resp.ReadFrom(res.Body)
	res.Body.Close()
	s.m.latency.Observe(time.Since(t0).Seconds())
	s.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
	if err != nil {
		return 0, &transportError{err: fmt.Errorf("reading bulk response: %w", err)}
	}
	return res.StatusCode, nil
}
