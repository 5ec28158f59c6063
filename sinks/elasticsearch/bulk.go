package elasticsearch

// bulk.go encodes a batch into Bulk API lines: the work state of one Write,
// action and source lines, grouping by document for parallel sends.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/sluicehq/sluice/pipeline"
)

// item is one encoded document: buf[start:end] is its action and source.
type item struct {
	idx        int // position in the batch
	start, end int
}

// work is one Write's reusable state.
type work struct {
	buf    []byte
	items  []item
	errs   []error
	groups [][]item
	resp   bytes.Buffer
	// bodies counts the bulk bodies (slices of buf) the transport has not
	// closed yet: buf is reused only once it has closed them all.
	bodies *bodyTrack
}

// Write sends the batch as bulk requests and maps every item back.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	w := s.work.Get()
	defer s.putWork(w)
	if w.bodies == nil {
		w.bodies = new(bodyTrack)
	}
	ctx = withBodyTrack(ctx, w.bodies)
	w.errs = slices.Grow(w.errs[:0], len(batch))[:len(batch)]
	clear(w.errs)
	s.encode(w, batch)

	groups := w.groups
	if len(groups) <= 1 {
		for _, g := range groups {
			s.sendGroup(ctx, w, g, &w.resp)
		}
	} else {
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp bytes.Buffer
				s.sendGroup(ctx, w, g, &resp)
			}()
		}
		wg.Wait()
	}
	return pipeline.FoldEventErrors(w.errs)
}

func (s *Sink) putWork(w *work) {
	if cap(w.buf) > 64<<20 {
		w.buf = nil
	}
	if !w.bodies.done() {
		// net/http still reads a body (answered before it was sent):
		// leave the buffer to it and to the collector.
		w.buf, w.bodies = nil, nil
	}
	clear(w.errs)
	w.resp.Reset()
	s.work.Put(w)
}

// encode appends every event's action line and source to w.buf. An event
// that cannot be encoded (no body, unrenderable index or id) fails
// permanently. With parallelism, events are laid out grouped by a hash of
// index and _id so a document's writes stay in one group, in order.
func (s *Sink) encode(w *work, batch []*pipeline.Event) {
	w.buf = w.buf[:0]
	w.items = w.items[:0]
	par := s.cfg.Parallelism
	if par > len(batch) {
		par = len(batch)
	}
	if par <= 1 {
		for i, ev := range batch {
			s.encodeOne(w, i, ev)
		}
		w.groups = append(w.groups[:0], w.items)
		return
	}
	// Two passes: encode in batch order, then reorder items by group. The
	// bytes of one group must be contiguous, so copy into a second buffer.
	for i, ev := range batch {
		s.encodeOne(w, i, ev)
	}
	groupOf := make([]int, len(w.items))
	counts := make([]int, par)
	for j, it := range w.items {
		g := int(maphash.Bytes(s.seed, w.buf[it.start:actionEnd(w.buf, it)]) % uint64(par))
		groupOf[j] = g
		counts[g]++
	}
	buf := make([]byte, 0, len(w.buf))
	items := make([]item, 0, len(w.items))
	w.groups = w.groups[:0]
	for g := range par {
		if counts[g] == 0 {
			continue
		}
		first := len(items)
		for j, it := range w.items {
			if groupOf[j] != g {
				continue
			}
			start := len(buf)
			buf = append(buf, w.buf[it.start:it.end]...)
			items = append(items, item{idx: it.idx, start: start, end: len(buf)})
		}
		w.groups = append(w.groups, items[first:])
	}
	w.buf, w.items = buf, items
}

// actionEnd is where the action line of it ends: the hash key (index, id).
func actionEnd(buf []byte, it item) int {
	if n := bytes.IndexByte(buf[it.start:it.end], '\n'); n >= 0 {
		return it.start + n
	}
	return it.end
}

func (s *Sink) encodeOne(w *work, i int, ev *pipeline.Event) {
	start := len(w.buf)
	buf, err := s.appendDoc(w.buf, ev)
	if err != nil {
		w.buf = buf[:start]
		w.errs[i] = pipeline.Permanent(err)
		s.m.items.WithLabelValues("failed", "encode").Inc()
		return
	}
	w.buf = buf
	w.items = append(w.items, item{idx: i, start: start, end: len(buf)})
}

// appendDoc appends the action line and the source line of ev.
func (s *Sink) appendDoc(buf []byte, ev *pipeline.Event) ([]byte, error) {
	body := ev.Body
	if len(body) == 0 {
		body = ev.Payload
	}
	if len(body) == 0 {
		return buf, fmt.Errorf("event %s has no body to index (is a decode step missing?)", ev.ID)
	}
	buf = append(buf, `{"`...)
	buf = append(buf, s.action...)
	buf = append(buf, `":{"_index":"`...)
	start := len(buf)
	var err error
	if buf, err = s.cfg.Index.Render(buf, ev); err != nil {
		return buf, fmt.Errorf("index name: %w", err)
	}
	buf = pipeline.EscapeJSONStringTail(buf, start)
	buf = append(buf, `","_id":"`...)
	start = len(buf)
	if s.id != nil {
		if buf, err = s.id.Render(buf, ev); err != nil {
			return buf, fmt.Errorf("document id: %w", err)
		}
	} else {
		buf = append(buf, ev.ID...)
	}
	if len(buf) == start {
		return buf, fmt.Errorf("event has an empty document id")
	}
	if len(buf)-start > 512 {
		return buf, fmt.Errorf("document id of event %s is %d bytes, over Elasticsearch's 512", ev.ID, len(buf)-start)
	}
	buf = pipeline.EscapeJSONStringTail(buf, start)
	if s.cfg.Routing != nil {
		buf = append(buf, `","routing":"`...)
		start = len(buf)
		if buf, err = s.cfg.Routing.Render(buf, ev); err != nil {
			return buf, fmt.Errorf("routing: %w", err)
		}
		buf = pipeline.EscapeJSONStringTail(buf, start)
	}
	buf = append(buf, "\"}}\n"...)
	if s.action == ActionUpdate {
		buf = append(buf, `{"doc":`...)
	}
	// The source goes as it is; only a body spread over lines (the bulk
	// format is one line per source) is compacted.
	if bytes.IndexByte(body, '\n') >= 0 {
		var cb bytes.Buffer
		if err := json.Compact(&cb, body); err != nil {
			return buf, fmt.Errorf("event %s body is not valid JSON: %w", ev.ID, err)
		}
		body = cb.Bytes()
	}
	buf = append(buf, body...)
	if s.action == ActionUpdate {
		buf = append(buf, `,"doc_as_upsert":true}`...)
	}
	return append(buf, '\n'), nil
}
