package handoff

import (
	"context"
	"errors"
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
