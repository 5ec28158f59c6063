// Package handoff is the queue between a source's background readers (one
// per partition or shard) and the runner's Read. Ownership can move while a
// batch waits in it: such a batch is acked with its stale error and
// skipped, so the new owner reads it and this consumer does not.
package handoff

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sluicehq/sluice/pipeline"
)

// Batch is what a reader hands over.
type Batch struct {
	Events []*pipeline.Event
	Ack    pipeline.AckFunc
	// Stale reports whether the batch's partition or shard is no longer
	// this consumer's; StaleErr is what it is then acked with.
	Stale    func() bool
	StaleErr error
}

// Queue is a bounded hand-over queue: a full queue holds readers back.
type Queue struct {
	ch        chan Batch
	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New returns a queue holding up to size batches.
func New(size int) *Queue { return &Queue{ch: make(chan Batch, size), done: make(chan struct{})} }

// Put waits for room for b; it returns false, with b unacked, when ctx
// ends first or the queue is closed.
func (q *Queue) Put(ctx context.Context, b Batch) bool {
	if q.closed.Load() {
		return false
	}
	select {
	case q.ch <- b:
		if q.closed.Load() {
			// Close may have drained before b went in: nobody reads now.
			q.drain()
		}
		return true
	case <-ctx.Done():
		return false
	case <-q.done:
		return false
	}
}

// Close acks every batch still queued with err at once (the reader
// stopped: they were never processed, and the source's drain must not wait
// for them) and refuses later Puts. Call it once nothing calls Read.
func (q *Queue) Close(err error) {
	q.closeOnce.Do(func() {
		q.closeErr = err
		q.closed.Store(true)
		close(q.done)
	})
	q.drain()
}

func (q *Queue) drain() {
	for {
		select {
		case b := <-q.ch:
			b.Ack(q.closeErr)
		default:
			return
		}
	}
}

// Read returns the next batch that is still this consumer's.
func (q *Queue) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case b := <-q.ch:
			if b.Stale != nil && b.Stale() {
				b.Ack(b.StaleErr)
				continue
			}
			return b.Events, b.Ack, nil
		}
	}
}
