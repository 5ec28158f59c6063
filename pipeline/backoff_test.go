package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// TestBackoff: the waits are the ones the readers' hand-rolled loops
// computed, min(max(first, 2*previous), limit) from 0, reset to 0 after a
// success.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		first, limit time.Duration
	}{
		{100 * time.Millisecond, 10 * time.Second}, // Kafka partition reader
		{200 * time.Millisecond, 10 * time.Second}, // Kinesis shard reader
		{time.Second, 5 * time.Minute},             // poller defaults
		{3 * time.Second, 7 * time.Second},         // a limit no doubling hits
		{time.Second, time.Second},
		{2 * time.Second, time.Second}, // a limit below first is first
	} {
		t.Run(fmt.Sprint(tc.first, tc.limit), func(t *testing.T) {
			b := pipeline.NewBackoff(tc.first, tc.limit)
			limit := max(tc.first, tc.limit)
			var prev time.Duration
			for i := range 40 {
				if i == 25 { // a success
					b.Reset()
					prev = 0
				}
				want := min(max(tc.first, 2*prev), limit)
				if got := b.Next(); got != want {
					t.Fatalf("wait %d = %v, want %v", i, got, want)
				}
				prev = want
			}
		})
	}
}

func ExampleBackoff() {
	b := pipeline.NewBackoff(100*time.Millisecond, time.Second)
	for range 5 { // five failed fetches
		fmt.Print(b.Next(), " ")
	}
	b.Reset() // a fetch succeeded
	fmt.Println(b.Next())
	// Output: 100ms 200ms 400ms 800ms 1s 100ms
}
