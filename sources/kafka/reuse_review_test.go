package kafka

import (
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
)

// TestLateSecondAckLeavesReusedBatchAlone: batch.go promises "A batch is
// released once however often its ack is called". The guard (released)
// is reset when the pool hands the batch out again, so an ack of the
// first hand-over that comes after the batch was reused released the
// batch in use by the second hand-over: its events and meta were cleared
// under the pipeline, and a third Read got the same arrays as the second
// (the same *Event pointers in two in-flight batches).
func TestLateSecondAckLeavesReusedBatchAlone(t *testing.T) {
	r := &fakeReader{recs: []kafkago.Message{
		{Key: []byte("a"), Value: []byte("1"), Headers: []kafkago.Header{{Key: "h", Value: []byte("x")}}},
		{Key: []byte("b"), Value: []byte("2")},
	}}
	s, p := testSource(t, 4)
	first, ack1 := readBatch(t, s, p, r, 4)
	ack1(nil)
	second, ack2 := readBatch(t, s, p, r, 4)
	if second[0] != first[0] {
		t.Fatal("precondition: the acked batch was not reused")
	}
	ack1(nil) // late, repeated ack of the first hand-over
	third, ack3 := readBatch(t, s, p, r, 4)
	defer ack3(nil)
	defer ack2(nil)
	for i, ev := range second {
		off, _ := ev.Meta.Get(MetaOffset)
		if want := fmt.Sprintf("crm/11/%d", 4+i); ev.ID != want || off != fmt.Sprint(4+i) || ev.Payload == nil {
			t.Errorf("second batch, event %d: id %q offset %q payload %q after a late ack of the first hand-over; want id %s", i, ev.ID, off, ev.Payload, want)
		}
	}
	if third[0] == second[0] {
		t.Error("the third batch got the arrays of the second, which is still in flight")
	}
}
