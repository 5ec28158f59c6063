package pipeline

import "context"

// AckFunc settles a batch a Source returned. The runner calls it exactly
// once per batch: with nil once every event of the batch was durably written
// to every sink, dropped on purpose by a transform, or written to the
// dead-letter sink; with a non-nil error when the pipeline stopped before
// that (shutdown deadline, a permanent error with no dead-letter sink). A
// source must not advance its checkpoint for a batch acked with an error.
//
// Acks of different batches may arrive in any order and from any goroutine:
// sources that checkpoint offsets track the contiguous acked prefix. Once
// a batch is acked nothing references its events any more: a source may
// reuse their memory (the file source does).
type AckFunc func(err error)

// Source produces batches of events.
type Source interface {
	// Read blocks until it has a batch, the context is done, or the source
	// is exhausted. An exhausted source returns io.EOF; the runner then
	// drains in-flight work and stops. Read is called from one goroutine.
	Read(ctx context.Context) (batch []*Event, ack AckFunc, err error)
	// Close releases the source. It is called once, after the last ack.
	Close(ctx context.Context) error
}

// Transform turns a batch into another. It may change events in place,
// drop events (by leaving them out of out), or fail some of them.
//
// To fail single events return the surviving events together with a
// *BatchError naming the failed ones; any other error fails the whole
// batch. Failures are retryable unless wrapped with Permanent. A transform
// must not add events that did not come from in: every event must be
// traceable to a source ack.
type Transform interface {
	Apply(ctx context.Context, in []*Event) (out []*Event, err error)
}

// Sink writes batches durably.
type Sink interface {
	// Write returns nil only when every event is durably stored. To report
	// that only some events failed, return a *BatchError naming them; any
	// other error fails the whole batch. Failures are retryable unless
	// wrapped with Permanent. Writes must be idempotent by Event.ID: the
	// runner retries and sources redeliver.
	//
	// Write is never called concurrently on one sink for events of the same
	// key, but may be called concurrently for different keys.
	Write(ctx context.Context, batch []*Event) error
	// Close flushes and releases the sink. It is called once, after the
	// last Write returned.
	Close(ctx context.Context) error
}

// Closer is implemented by transforms that hold resources.
type Closer interface {
	Close(ctx context.Context) error
}

// Starter is implemented by components that need to do work before the
// first event (connect, ensure indexes). Start failing fails the run.
type Starter interface {
	Start(ctx context.Context) error
}

// Settler is implemented by transforms that must learn how the events they
// passed on ended, such as a dedupe step that may only remember an event as
// seen once it is stored: otherwise a write that fails and is redelivered
// would be dropped as a duplicate of itself.
//
// After a batch is settled, the runner calls Settle once per transform that
// ran on it, with the events that transform returned (err nil: every one is
// written, dead-lettered or dropped downstream) or with the error the batch
// was acked with (the source will redeliver them). Settle must not block.
type Settler interface {
	Settle(events []*Event, err error)
}

// DeadLetterMemory is implemented by transforms that can remember, within
// a window, which dead letters were written (dedupe), so that a poison event
// redelivered after a crash or rebalance (its dead letter written, its
// source position not yet committed) is not dead-lettered a second time.
//
// The runner calls MarkDeadLetters only after the dead-letter sink completed
// the write of those keys, and skips a dead letter only when
// DeadLettersWritten says its key was marked: a dead letter whose write did
// not complete is never skipped. An error from DeadLettersWritten means
// "unknown": the runner writes every dead letter (at least once).
// MarkDeadLetters must not block.
type DeadLetterMemory interface {
	DeadLettersWritten(ctx context.Context, keys []string, written []bool) error
	MarkDeadLetters(keys []string)
}

// ReadinessReporter is implemented by components whose readiness depends on
// something outside the process (brokers reachable, a group joined). /readyz
// answers 503 with the first component's error while any reports one, so a
// deployment waits for it rather than the process crash-looping.
type ReadinessReporter interface {
	Ready() error
}
