package file

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestRepeatedAckKeepsBatchOnce: the file source puts a batch on its free
// list at every call of its ack. An ack called twice put it there twice,
// so the next two Reads returned the same arrays: the second Read
// rewrote the events (ids, payloads) of the first while both were in
// flight — one batch's lines lost, the other's written twice. The Kafka
// source's ack is guarded against a repeat; this one is not.
func TestRepeatedAckKeepsBatchOnce(t *testing.T) {
	s := openTwelve(t)
	ctx := context.Background()
	_, ack, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ack(nil)
	ack(nil) // a repeated ack
	second, _, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	third, _, _ := s.Read(ctx)
	if len(third) > 0 && third[0] == second[0] {
		t.Error("two batches in flight at once share their events")
	}
	for i, ev := range second {
		if want := fmt.Sprintf("e-%d", 4+i); ev.ID != want || !strings.Contains(string(ev.Payload), `"`+want+`"`) {
			t.Errorf("second batch, event %d: id %q payload %q, want %s", i, ev.ID, ev.Payload, want)
		}
	}
}
