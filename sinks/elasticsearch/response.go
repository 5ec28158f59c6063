package elasticsearch

// response.go maps a bulk response's items back to their events and counts
// the outcomes.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// items maps a bulk response's items back to their events, in one loop:
// each item is scanned once for its status, result and error, and only a
// failed item's error is read further.
func (s *Sink) items(w *work, items []item, resp []byte) {
	// gjson.GetBytes copies what it returns; the response buffer outlives
	// this call, so read it in place.
	doc := unsafe.String(unsafe.SliceData(resp), len(resp))
	arr := gjson.Get(doc, "items")
	if !arr.IsArray() {
		s.failAll(w, items, &requestError{status: 200, reason: "bulk response without items: " + truncate(string(resp), 200)}, "bad_response")
		return
	}
	n := 0
	var c counts
	arr.ForEach(func(_, v gjson.Result) bool {
		if n >= len(items) {
			n++ // more items than documents: counted for the error, not mapped
			return true
		}
		it := items[n]
		n++
		v.ForEach(func(_, r gjson.Result) bool {
			s.item(w, it, r, &c)
			return false
		})
		return true
	})
	if n != len(items) {
		for _, it := range items {
			w.errs[it.idx] = nil
		}
		s.failAll(w, items, &requestError{status: 200, reason: fmt.Sprintf("bulk response has %d items for %d documents", n, len(items))}, "bad_response")
		return
	}
	c.flush(s.m)
	s.ready.Set(nil)
}

// item maps one item's result r (the object under its action) to its
// event: a success or an existing document (create) counts; a failure
// sets the event's error, retryable or permanent.
func (s *Sink) item(w *work, it item, r gjson.Result, c *counts) {
	var result string
	var status int
	var e gjson.Result
	r.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "result":
			result = val.Str
		case "status":
			status = int(val.Int())
		case "error":
			e = val
		}
		return true
	})
	if status >= 200 && status < 300 {
		c.add(result, status)
		return
	}
	if status == http.StatusConflict && s.action == ActionCreate {
		c.add("exists", status)
		return
	}
	// Clone: the strings point into the reused response buffer.
	ie := &ItemError{Status: status, Type: strings.Clone(e.Get("type").String()), Reason: strings.Clone(e.Get("reason").String())}
	if cb := e.Get("caused_by"); cb.Exists() {
		ie.CausedBy = cb.Get("type").String() + ": " + cb.Get("reason").String()
	}
	if !e.IsObject() && e.Exists() {
		ie.Reason = strings.Clone(e.String())
	}
	if ie.Retryable() {
		w.errs[it.idx] = ie
		c.add("retry", status)
	} else {
		w.errs[it.idx] = pipeline.Permanent(ie)
		c.add("failed", status)
	}
}

// counts aggregates item outcomes per response, so the metric is touched
// once per (result, status) rather than once per item.
type counts struct {
	k []countKey
	n []int
}

var knownResults = map[string]string{"created": "created", "updated": "updated", "noop": "noop", "exists": "exists", "retry": "retry", "failed": "failed", "deleted": "deleted"}

type countKey struct {
	result string
	status int
}

func (c *counts) add(result string, status int) {
	// result may point into the reused response buffer: keep only
	// constants (label values outlive the buffer).
	switch result {
	case "created", "updated", "noop", "exists", "retry", "failed", "deleted":
		result = knownResults[result]
	default:
		result = "ok"
	}
	for i, k := range c.k {
		if k.status == status && k.result == result {
			c.n[i]++
			return
		}
	}
	c.k = append(c.k, countKey{result, status})
	c.n = append(c.n, 1)
}

func (c *counts) flush(m *metrics) {
	for i, k := range c.k {
		m.items.WithLabelValues(k.result, strconv.Itoa(k.status)).Add(float64(c.n[i]))
	}
}
