// Package handoff is the queue between a source's background readers (one
// per partition or shard) and the runner's Read. Ownership can move while a
// batch waits in it: such a batch is acked with its stale error and
// skipped, so the new owner reads it and this consumer does not.
//
// A reader may Reserve room before it gathers a batch and PutReserved it
// after: then at most size batches are gathered or queued at once,
// whatever the number of readers, so the records a consumer holds ahead of
// the pipeline are bounded by the queue, not by the number of partitions.
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
	ch chan Batch
	// room holds one token per batch queued or reserved; its capacity is
	// ch's, so a reserved batch always fits into ch.
	room      chan struct{}
	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New returns a queue holding up to size batches.
func New(size int) *Queue {
	return &Queue{ch: make(chan Batch, size), room: make(chan struct{}, size), done: make(chan struct{})}
}

// Put waits for room for b; it returns false, with b unacked, when ctx
// ends first or the queue is closed.
func (q *Queue) Put(ctx context.Context, b Batch) bool {
	if !q.Reserve(ctx) {
		return false
	}
	return q.PutReserved(b)
}

// Reserve waits until the queue has room for one more batch than is
// queued or reserved, and keeps it for the caller's next PutReserved (or
// Unreserve). It returns false, reserving nothing, when ctx ends first or
// the queue is closed.
func (q *Queue) Reserve(ctx context.Context) bool {
	if q.closed.Load() {
		return false
	}
	select {
	case q.room <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-q.done:
		return false
	}
}

// Unreserve gives back a reservation that will not be used.
func (q *Queue) Unreserve() { <-q.room }

// PutReserved queues b into the room Reserve kept; it never waits. It
// returns false, with b unacked and the reservation given back, when the
// queue is closed.
func (q *Queue) PutReserved(b Batch) bool {
	if q.closed.Load() {
		q.Unreserve()
		return false
	}
	q.ch <- b // room's tokens never outnumber ch's capacity
	if q.closed.Load() {
		// Close may have drained before b went in: nobody reads now.
		q.drain()
	}
	return true
}

// Close acks every batch still queued with err at once (the reader
// stopped: they were never processed, and the source's drain must not wait
// for them) and refuses later Puts and Reserves. Call it once nothing
// calls Read.
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
			<-q.room
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
			<-q.room
			if b.Stale != nil && b.Stale() {
				b.Ack(b.StaleErr)
				continue
			}
			return b.Events, b.Ack, nil
		}
	}
}
