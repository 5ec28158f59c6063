package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrNoDeadLetter wraps the failure that stopped a pipeline because an
// event failed permanently and no dead_letter sink was configured: rather
// than drop the event, the pipeline stops with its batch unacked.
var ErrNoDeadLetter = errors.New("event failed permanently and no dead_letter sink is configured")

// process takes one batch through the transforms, every sink and, for the
// events that failed permanently, the dead-letter sink. It returns nil only
// when every event of the batch is settled: written everywhere, dropped by
// a transform, or dead-lettered.
func (p *Pipeline) process(ctx context.Context, b *batch) (Stats, error) {
	events := b.events
	var failures []failure
	for i := range p.transforms {
		t := &p.transforms[i]
		out, failed, err := p.applyTransform(ctx, t, events)
		if err != nil {
			return Stats{}, err
		}
		if t.settler != nil {
			b.passed = append(b.passed, passedOn{settler: t.settler, events: out})
		}
		failures = append(failures, failed...)
		events = out
		if len(events) == 0 {
			break
		}
	}
	transformFailures := len(failures)
	if len(events) > 0 {
		failed, err := p.writeAll(ctx, events)
		if err != nil {
			return Stats{}, err
		}
		failures = append(failures, failed...)
	}
	if len(failures) > 0 {
		if err := p.writeDeadLetters(ctx, failures); err != nil {
			return Stats{}, err
		}
	}
	b.delivered = events
	if transformFailures > 0 {
		b.delivered = slices.Clip(events) // appending must not write into the transforms' slice
		for _, f := range failures[:transformFailures] {
			b.delivered = append(b.delivered, f.event)
		}
	}
	return Stats{
		Read:         int64(len(b.events)),
		Written:      int64(len(events) - (len(failures) - transformFailures)),
		Dropped:      int64(len(b.events) - len(events) - transformFailures),
		DeadLettered: int64(len(failures)),
	}, nil
}

// applyTransform runs t over events, retrying the events that failed
// retryably. It returns the events to pass on in their original order and
// the ones that failed permanently.
func (p *Pipeline) applyTransform(ctx context.Context, t *stage[Transform], events []*Event) ([]*Event, []failure, error) {
	t.m.in.Add(float64(len(events)))
	start := time.Now()
	defer func() { t.m.seconds.Add(time.Since(start).Seconds()) }()
	p.tapped(t.label, TapBefore, events)

	out, err := t.c.Apply(ctx, events)
	if err == nil {
		t.m.out.Add(float64(len(out)))
		t.m.dropped.Add(float64(len(events) - len(out)))
		p.tapped(t.label, TapAfter, out)
		return out, nil, nil
	}
	// The slow path: some or all events failed. Survivors of every attempt
	// are merged back in input order, so a retried event does not jump
	// behind a later event of the same key.
	var kept []*Event
	firstOut, firstErr := out, err
	failures, err := p.retryEvents(ctx, &stageRetry{
		label: t.label, m: t.m, retryMsg: "transform failed, retrying",
		try: func(pending []*Event) error {
			out, err := firstOut, firstErr // the first attempt, made above
			if err == nil {                // every later one
				out, err = t.c.Apply(ctx, pending)
			}
			firstOut, firstErr = nil, nil
			var be *BatchError
			if err == nil || errors.As(err, &be) {
				kept = append(kept, out...)
			}
			return err
		},
		next: eventsAt,
	}, events)
	if err != nil {
		return nil, nil, err
	}
	position := make(map[*Event]int, len(events))
	for i, ev := range events {
		position[ev] = i
	}
	slices.SortFunc(kept, func(a, b *Event) int { return position[a] - position[b] })
	p.tapped(t.label, TapAfter, kept)
	t.m.out.Add(float64(len(kept)))
	t.m.dead.Add(float64(len(failures)))
	t.m.dropped.Add(float64(len(events) - len(kept) - len(failures)))
	return kept, failures, nil
}

// writeAll writes events to every sink at once and returns the events that
// failed permanently in any of them (once per event).
func (p *Pipeline) writeAll(ctx context.Context, events []*Event) ([]failure, error) {
	if len(p.sinks) == 1 {
		return p.writeSink(ctx, &p.sinks[0], events)
	}
	results := make([][]failure, len(p.sinks))
	errs := make([]error, len(p.sinks))
	var wg sync.WaitGroup
	for i := range p.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = p.writeSink(ctx, &p.sinks[i], events)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var failures []failure
	seen := map[*Event]bool{}
	for _, fs := range results {
		for _, f := range fs {
			if !seen[f.event] {
				seen[f.event] = true
				failures = append(failures, f)
			}
		}
	}
	return failures, nil
}

// writeSink writes events to one sink, retrying what failed retryably.
//
// A retry resends the failed events together with every later event of the
// same key, even those already written: writes are idempotent, and so the
// last write of each key is still its latest event.
func (p *Pipeline) writeSink(ctx context.Context, s *stage[Sink], events []*Event) ([]failure, error) {
	s.m.in.Add(float64(len(events)))
	p.tapped(s.label, TapBefore, events)
	failures, err := p.retryEvents(ctx, &stageRetry{
		label: s.label, m: s.m, retryMsg: "sink write failed, retrying", sink: true,
		try: func(pending []*Event) error {
			start := time.Now()
			err := s.c.Write(ctx, pending)
			d := time.Since(start)
			s.m.write.Observe(d.Seconds())
			s.m.seconds.Add(d.Seconds())
			var be *BatchError
			switch {
			case err == nil:
				p.lastWrite.Store(time.Now().UnixNano())
				s.m.out.Add(float64(len(pending)))
				p.tapped(s.label, TapAfter, pending)
			case ctx.Err() == nil && errors.As(err, &be):
				p.lastWrite.Store(time.Now().UnixNano()) // the sink answered per event
			}
			return err
		},
		partial: func(pending []*Event, be *BatchError) {
			s.m.out.Add(float64(len(pending) - len(be.Failures)))
			if p.tap.on() { // writtenOf allocates: only for a tapper
				p.tapped(s.label, TapAfter, writtenOf(pending, be))
			}
		},
		next: withKeySuccessors,
	}, events)
	if err != nil {
		return nil, err
	}
	s.m.dead.Add(float64(len(failures)))
	return failures, nil
}

// withKeySuccessors returns the events at the failed indexes plus every
// later event sharing a key with one of them, in batch order.
func withKeySuccessors(events []*Event, failed []int) []*Event {
	if len(failed) == len(events) {
		return events
	}
	isFailed := make([]bool, len(events))
	for _, i := range failed {
		isFailed[i] = true
	}
	keys := map[string]bool{}
	out := make([]*Event, 0, len(failed))
	for i, ev := range events {
		switch {
		case isFailed[i]:
			out = append(out, ev)
			if len(ev.Key) > 0 {
				keys[string(ev.Key)] = true
			}
		case len(ev.Key) > 0 && keys[string(ev.Key)]:
			out = append(out, ev)
		}
	}
	return out
}

// writeDeadLetters stores the failed events in the dead-letter sink,
// retrying outages until the context ends. Without a dead-letter sink, or
// when it refuses an event for good, the batch cannot be settled and the
// pipeline must stop.
func (p *Pipeline) writeDeadLetters(ctx context.Context, failures []failure) error {
	if p.deadLetter == nil {
		f := failures[0]
		return fmt.Errorf("%w: event %s (payload_bytes=%d) in %s: %w (and %d more)", ErrNoDeadLetter, f.event.ID, len(f.event.Payload), f.component, LogSafe(f.err), len(failures)-1)
	}
	failures, keys := p.unwrittenDeadLetters(ctx, failures)
	if len(failures) == 0 {
		return nil
	}
	now := time.Now()
	dead := make([]*Event, len(failures))
	for i, f := range failures {
		dead[i] = newDeadLetterEvent(p.name, f, now)
		p.log.Warn("event dead-lettered", "event", f.event.ID, "component", f.component, "payload_bytes", len(f.event.Payload), "reason", LogSafe(f.err))
	}
	s := p.deadLetter
	refused, err := p.writeSink(ctx, s, dead)
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return fmt.Errorf("dead-letter sink %s refused event %s: %w", s.label, refused[0].event.ID, LogSafe(refused[0].err))
	}
	if p.dlMemory != nil && len(keys) > 0 {
		// Only now, with the write complete, may a redelivery skip them.
		p.dlMemory.MarkDeadLetters(keys)
	}
	return nil
}
