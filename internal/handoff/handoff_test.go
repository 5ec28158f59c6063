package handoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

func TestReadSkipsStaleBatchesAndAcksThem(t *testing.T) {
	q := New(3)
	errGone := errors.New("gone")
	var acked []error
	ack := func(err error) { acked = append(acked, err) }
	ctx := context.Background()
	q.Put(ctx, Batch{Events: []*pipeline.Event{{ID: "a"}}, Ack: ack, Stale: func() bool { return true }, StaleErr: errGone})
	q.Put(ctx, Batch{Events: []*pipeline.Event{{ID: "b"}}, Ack: ack, Stale: func() bool { return false }})
	evs, _, err := q.Read(ctx)
	if err != nil || len(evs) != 1 || evs[0].ID != "b" {
		t.Fatalf("Read = %v, %v; want batch b", evs, err)
	}
	if len(acked) != 1 || !errors.Is(acked[0], errGone) {
		t.Fatalf("acks %v: the stale batch must be acked with its error", acked)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := q.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("empty queue Read = %v, want the context's error", err)
	}
	full := New(1)
	full.Put(context.Background(), Batch{Ack: ack})
	if full.Put(ctx, Batch{Ack: ack}) {
		t.Fatal("Put into a full queue succeeded after its context ended")
	}
}

// TestCloseAcksQueuedBatchesAtOnce: batches handed over but never read are
// acked with the close error by Close, and a later Put is refused.
func TestCloseAcksQueuedBatchesAtOnce(t *testing.T) {
	q := New(4)
	var acked []error
	ack := func(err error) { acked = append(acked, err) }
	ctx := context.Background()
	for range 3 {
		if !q.Put(ctx, Batch{Ack: ack}) {
			t.Fatal("Put into an open queue with room failed")
		}
	}
	q.Close(pipeline.ErrAbandoned)
	if len(acked) != 3 {
		t.Fatalf("%d of 3 queued batches acked by Close", len(acked))
	}
	for _, err := range acked {
		if !errors.Is(err, pipeline.ErrAbandoned) {
			t.Fatalf("queued batch acked %v, want ErrAbandoned", err)
		}
	}
	if q.Put(ctx, Batch{Ack: ack}) {
		t.Fatal("Put after Close succeeded")
	}
}

// TestReserveBoundsGatheredAndQueued: reservations and queued batches
// together never exceed the queue's size; a Read or an Unreserve makes
// room again. A Reserve on a full queue with an ended context fails (the
// only ready case), so no check depends on timing.
func TestReserveBoundsGatheredAndQueued(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			q := New(size)
			for i := range size {
				if !q.Reserve(ctx) {
					t.Fatalf("reservation %d of %d refused", i+1, size)
				}
			}
			if q.Reserve(ended) {
				t.Fatal("Reserve beyond the queue's size succeeded")
			}
			q.Unreserve()
			if !q.Reserve(ctx) {
				t.Fatal("Reserve after Unreserve refused")
			}
			for i := range size {
				if !q.PutReserved(Batch{Events: []*pipeline.Event{{ID: string(rune('a' + i))}}, Ack: func(error) {}}) {
					t.Fatalf("PutReserved %d refused", i)
				}
			}
			if q.Reserve(ended) || q.Put(ended, Batch{Ack: func(error) {}}) {
				t.Fatal("Reserve or Put into a queue full of reserved batches succeeded")
			}
			evs, _, err := q.Read(ctx)
			if err != nil || len(evs) != 1 || evs[0].ID != "a" {
				t.Fatalf("Read = %v, %v; want batch a", evs, err)
			}
			if !q.Reserve(ctx) {
				t.Fatal("Reserve after a Read refused")
			}
		})
	}
}

// TestPutReservedAfterClose: a batch gathered under a reservation when the
// queue closes is refused (its reader acks it) and nothing more is reserved.
func TestPutReservedAfterClose(t *testing.T) {
	q := New(2)
	ctx := context.Background()
	if !q.Reserve(ctx) || !q.Reserve(ctx) {
		t.Fatal("Reserve on an empty queue refused")
	}
	var acked []error
	if !q.PutReserved(Batch{Ack: func(err error) { acked = append(acked, err) }}) {
		t.Fatal("PutReserved on an open queue refused")
	}
	q.Close(pipeline.ErrAbandoned)
	if len(acked) != 1 || !errors.Is(acked[0], pipeline.ErrAbandoned) {
		t.Fatalf("queued batch acked %v by Close, want ErrAbandoned once", acked)
	}
	if q.PutReserved(Batch{Ack: func(error) { t.Error("a refused batch acked by the queue") }}) {
		t.Fatal("PutReserved after Close succeeded")
	}
	if q.Reserve(ctx) {
		t.Fatal("Reserve after Close succeeded")
	}
}
