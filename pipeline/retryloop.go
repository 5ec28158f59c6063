package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// stageRetry describes one stage (a transform or a sink) to retryEvents,
// the retry/classify/give-up loop both share.
type stageRetry struct {
	label    string
	m        *stageMetrics
	retryMsg string // logged before each retry
	// try runs one attempt over pending. Its own bookkeeping (survivors,
	// metrics, taps) is its business.
	try func(pending []*Event) error
	// partial, if set, is called with an attempt's *BatchError once its
	// indexes are known to be valid.
	partial func(pending []*Event, be *BatchError)
	// next picks the events of the next attempt from pending and the
	// indexes of its retryable failures (in the order reported).
	next func(pending []*Event, retryable []int) []*Event
	// sink selects the sink's way with errors, kept as it was: the retries
	// metric is classed by the attempt's whole error (not the last
	// retryable event's), an event given up on keeps its own error as the
	// reason (not the last retryable one), the log names how many of the
	// attempt's events failed, a failed attempt under a canceled context
	// ends the loop at once, and the errors that end it name the sink.
	sink bool
}

// retryEvents runs s over events until every event is settled: done (try
// reported no failure for it), failed permanently, or given up on after
// the retry policy's attempts ("giving up after N attempts: reason"). An
// error is read per event (a *BatchError), for the whole attempt
// (permanent), or else as retryable for every event of the attempt. It
// returns the permanent and given-up failures, in the order found.
func (p *Pipeline) retryEvents(ctx context.Context, s *stageRetry, events []*Event) ([]failure, error) {
	var failures []failure
	pending := events
	retry := newRetrier(p.cfg.Retry)
	for {
		err := s.try(pending)
		if err == nil {
			break
		}
		if s.sink && ctx.Err() != nil {
			return nil, fmt.Errorf("write %s: %w", s.label, err)
		}
		var retryable []int
		var lastErr error
		var be *BatchError
		var settled []*Event // failed for good in this attempt
		switch {
		case errors.As(err, &be):
			for _, f := range be.Failures {
				if f.Index < 0 || f.Index >= len(pending) {
					return nil, fmt.Errorf("%s reported a failure for event %d of a batch of %d", s.label, f.Index, len(pending))
				}
				if IsPermanent(f.Err) {
					failures = append(failures, s.fail(pending[f.Index], f.Err, retry.tries+1))
					settled = append(settled, pending[f.Index])
				} else {
					retryable = append(retryable, f.Index)
					lastErr = f.Err
				}
			}
			if s.partial != nil {
				s.partial(pending, be)
			}
		case IsPermanent(err):
			for _, ev := range pending {
				failures = append(failures, s.fail(ev, err, retry.tries+1))
			}
		default:
			retryable = make([]int, len(pending))
			for i := range retryable {
				retryable[i] = i
			}
			lastErr = err
		}
		if len(retryable) == 0 {
			break
		}
		if s.sink {
			lastErr = err
		}
		s.m.retried(lastErr, len(retryable))
		if !retry.failed() {
			for _, i := range retryable {
				reason := lastErr
				if s.sink {
					reason = errorFor(err, i)
				}
				failures = append(failures, s.fail(pending[i], fmt.Errorf("giving up after %d attempts: %w", retry.tries, reason), retry.tries))
			}
			break
		}
		if s.sink {
			p.log.Warn(s.retryMsg, "component", s.label, "events", len(retryable), "of", len(pending), "err", LogSafe(err))
		} else {
			p.log.Warn(s.retryMsg, "component", s.label, "events", len(retryable), "err", LogSafe(lastErr))
		}
		if err := retry.wait(ctx); err != nil {
			if s.sink {
				return nil, fmt.Errorf("write %s: %w", s.label, err)
			}
			return nil, err
		}
		pending = withoutSettled(s.next(pending, retryable), settled)
	}
	return failures, nil
}

// withoutSettled returns next without the events of settled. A sink's
// retry takes a failed event's later events of the same key; one that
// failed for good in the same attempt is settled, not resent (it would
// fail again and be dead-lettered twice).
func withoutSettled(next, settled []*Event) []*Event {
	if len(settled) == 0 {
		return next
	}
	return slices.DeleteFunc(slices.Clone(next), func(ev *Event) bool { return slices.Contains(settled, ev) })
}

// fail is the failure of ev in this stage.
func (s *stageRetry) fail(ev *Event, err error, attempts int) failure {
	return failure{event: ev, component: s.label, err: err, attempts: attempts}
}

// errorFor returns the error of event i in err, or err itself.
func errorFor(err error, i int) error {
	var be *BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failures {
			if f.Index == i {
				return f.Err
			}
		}
	}
	return err
}

// eventsAt returns the events at the given indexes, in that order.
func eventsAt(events []*Event, at []int) []*Event {
	out := make([]*Event, len(at))
	for j, i := range at {
		out[j] = events[i]
	}
	return out
}
