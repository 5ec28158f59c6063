package pipeline

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Tap defaults and bounds: samples a second, and buffered lines a slow
// tapper may fall behind by before samples are dropped.
const (
	TapDefaultRate = 10
	TapMaxRate     = 1000
	tapBuffer      = 256
)

// TapHandler serves /tap: sampled events at one component and stage as JSON
// lines (TapEvent), until the tapper disconnects, --limit events were sent,
// or the pipeline stops. Query: component (a label, "transforms[2].filter",
// or its path, "transforms[2]"), stage (after, the default, or before), rate
// (samples a second, default 10, at most 1000), limit (0: no limit), filter
// (an expression compiled by filter; refused when filter is nil).
//
// The pipeline never waits for a tapper: when its buffer is full the
// samples are dropped and counted in a {"dropped": n} line.
func (p *Pipeline) TapHandler(filter TapFilter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.tap == nil {
			http.Error(w, "tap is off for this pipeline: set metrics.tap: true in its file", http.StatusNotFound)
			return
		}
		sub, limit, err := p.parseTap(r, filter)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		flusher, _ := w.(http.Flusher)
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if flusher != nil {
			flusher.Flush()
		}
		p.tap.subscribe(sub)
		defer p.tap.unsubscribe(sub)
		p.serveTap(w, r, flusher, sub, limit)
	})
}

func (p *Pipeline) serveTap(w http.ResponseWriter, r *http.Request, flusher http.Flusher, sub *tapSub, limit int) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-r.Context().Done():
			return
		case line := <-sub.out:
			if _, err := w.Write(append(line, '\n')); err != nil {
				return
			}
			sent++
			// Write what else is queued before one flush.
			for drained := false; !drained && (limit == 0 || sent < limit); {
				select {
				case line := <-sub.out:
					if _, err := w.Write(append(line, '\n')); err != nil {
						return
					}
					sent++
				default:
					drained = true
				}
			}
			if flusher != nil {
				flusher.Flush()
			}
			if limit > 0 && sent >= limit {
				return
			}
		case <-tick.C:
			if n := sub.dropped.Swap(0); n > 0 {
				fmt.Fprintf(w, "{\"dropped\":%d}\n", n)
				if flusher != nil {
					flusher.Flush()
				}
			}
			if !p.Ready() {
				return // the pipeline stopped
			}
		}
	}
}

func (p *Pipeline) parseTap(r *http.Request, filter TapFilter) (*tapSub, int, error) {
	q := r.URL.Query()
	points := p.tapPoints()
	labels := make([]string, 0, len(points))
	for l := range points {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	want := q.Get("component")
	if want == "" {
		return nil, 0, fmt.Errorf("component is required, one of: %s", strings.Join(labels, ", "))
	}
	component := ""
	for _, l := range labels {
		if l == want || strings.HasPrefix(l, want+".") {
			component = l
		}
	}
	if component == "" {
		return nil, 0, fmt.Errorf("unknown component %q; this pipeline has: %s", want, strings.Join(labels, ", "))
	}
	stage := q.Get("stage")
	if stage == "" {
		stage = TapAfter
	}
	okStage := false
	for _, s := range points[component] {
		okStage = okStage || s == stage
	}
	if !okStage {
		return nil, 0, fmt.Errorf("%s has no stage %q (it has %s)", component, stage, strings.Join(points[component], ", "))
	}
	rate := float64(TapDefaultRate)
	if v := q.Get("rate"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || f > TapMaxRate {
			return nil, 0, fmt.Errorf("rate must be a number of events a second above 0 and at most %d, not %q", TapMaxRate, v)
		}
		rate = f
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, 0, fmt.Errorf("limit must be a whole number ≥ 0, not %q", v)
		}
		limit = n
	}
	sub := &tapSub{component: component, stage: stage, rate: rate, out: make(chan []byte, tapBuffer)}
	if expr := q.Get("filter"); expr != "" {
		if filter == nil {
			return nil, 0, fmt.Errorf("this server cannot evaluate filters")
		}
		match, err := filter(expr)
		if err != nil {
			return nil, 0, fmt.Errorf("filter: %w", err)
		}
		sub.match = match
	}
	return sub, limit, nil
}
