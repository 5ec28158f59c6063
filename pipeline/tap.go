package pipeline

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Tap stages: events entering a component, or leaving it (a source's read,
// a transform's output, what a sink wrote).
const (
	TapBefore = "before"
	TapAfter  = "after"
)

// TapEvent is one sampled event as /tap serves it, one JSON object a line.
type TapEvent struct {
	Component string            `json:"component"`
	Stage     string            `json:"stage"`
	At        time.Time         `json:"at"`
	ID        string            `json:"id"`
	Key       string            `json:"key,omitempty"`
	Time      *time.Time        `json:"time,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	// Body is the decoded body, else the payload when it is JSON; Text the
	// payload when it is other UTF-8; neither for binary payloads.
	Body json.RawMessage `json:"body,omitempty"`
	Text string          `json:"text,omitempty"`
	// Dropped, on a line without an event, counts samples the tapper was
	// too slow to take since the last such line.
	Dropped int64 `json:"dropped,omitempty"`
}

// TapFilter compiles a tapper's --filter expression into a predicate. The
// CLI passes the filter transform's compiler, so the expression language is
// the same; without one, filters are refused.
type TapFilter func(expr string) (func(*Event) bool, error)

// tapHub fans sampled events out to the tappers. With nobody tapping, a
// stage pays one atomic load per batch (active); a tapper never blocks the
// pipeline: its samples are dropped when its buffer is full.
type tapHub struct {
	active atomic.Int32
	mu     sync.Mutex
	subs   map[*tapSub]struct{}
}

type tapSub struct {
	component, stage string
	match            func(*Event) bool // nil: every event
	out              chan []byte
	dropped          atomic.Int64
	// token bucket: rate samples a second, burst of one second's worth
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newTapHub() *tapHub { return &tapHub{subs: map[*tapSub]struct{}{}} }

// on is the only cost of a tap point while nobody taps.
func (h *tapHub) on() bool { return h != nil && h.active.Load() > 0 }

func (h *tapHub) subscribe(s *tapSub) {
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	h.active.Add(1)
}

func (h *tapHub) unsubscribe(s *tapSub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	h.active.Add(-1)
}

// publish offers events seen at component/stage to the matching tappers.
// Callers check on() first.
func (h *tapHub) publish(component, stage string, events []*Event) {
	if len(events) == 0 {
		return
	}
	h.mu.Lock()
	var subs []*tapSub
	for s := range h.subs {
		if s.component == component && s.stage == stage {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	now := time.Now()
	for _, s := range subs {
		for _, ev := range events {
			if s.match != nil && !s.match(ev) {
				continue
			}
			if !s.take(now) {
				break // over the rate: the rest of this batch is not sampled
			}
			line, err := json.Marshal(newTapEvent(component, stage, now, ev))
			if err != nil {
				continue
			}
			select {
			case s.out <- line:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

func (s *tapSub) take(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		s.tokens = max(1, s.rate)
	} else {
		s.tokens = min(max(1, s.rate), s.tokens+now.Sub(s.last).Seconds()*s.rate)
	}
	s.last = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func newTapEvent(component, stage string, now time.Time, ev *Event) *TapEvent {
	te := &TapEvent{Component: component, Stage: stage, At: now, ID: ev.ID, Key: string(ev.Key)}
	if !ev.Time.IsZero() {
		t := ev.Time
		te.Time = &t
	}
	if len(ev.Meta) > 0 {
		te.Meta = make(map[string]string, len(ev.Meta))
		for _, p := range ev.Meta {
			te.Meta[p.Key] = p.Value
		}
	}
	switch {
	case ev.Body != nil && json.Valid(ev.Body):
		te.Body = append(json.RawMessage(nil), ev.Body...)
	case json.Valid(ev.Payload):
		te.Body = append(json.RawMessage(nil), ev.Payload...)
	case utf8.Valid(ev.Payload):
		te.Text = string(ev.Payload)
	}
	return te
}

// tapPoints lists the taps a pipeline offers: component label → stages.
func (p *Pipeline) tapPoints() map[string][]string {
	pts := map[string][]string{p.source.label: {TapAfter}}
	for _, t := range p.transforms {
		pts[t.label] = []string{TapBefore, TapAfter}
	}
	for _, s := range p.sinks {
		pts[s.label] = []string{TapBefore, TapAfter}
	}
	if p.deadLetter != nil {
		pts[p.deadLetter.label] = []string{TapBefore, TapAfter}
	}
	return pts
}

// writtenOf is what a sink stored of pending when it failed be's events.
func writtenOf(pending []*Event, be *BatchError) []*Event {
	failed := make(map[int]bool, len(be.Failures))
	for _, f := range be.Failures {
		failed[f.Index] = true
	}
	out := make([]*Event, 0, len(pending)-len(failed))
	for i, ev := range pending {
		if !failed[i] {
			out = append(out, ev)
		}
	}
	return out
}

// tapped offers events seen at component/stage to the tappers: one atomic
// load when nobody taps.
func (p *Pipeline) tapped(component, stage string, events []*Event) {
	if p.tap.on() {
		p.tap.publish(component, stage, events)
	}
}
