package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// TestSleep: a live context waits out d and gets nil; an ended one gets its
// own error at once, however long d is (an hour here: a Sleep that ignored
// the context would hang the test, which is what it would do in a
// component's shutdown).
func TestSleep(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"live, short wait", live, time.Millisecond, nil},
		{"live, zero", live, 0, nil},
		{"live, negative", live, -time.Second, nil},
		{"canceled, long wait", canceled, time.Hour, context.Canceled},
		{"canceled, zero", canceled, 0, context.Canceled},
		{"deadline passed, long wait", expired, time.Hour, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := pipeline.Sleep(tc.ctx, tc.d)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Sleep(%v) = %v, want %v", tc.d, err, tc.want)
			}
			if tc.want == nil && tc.d > 0 && time.Since(start) < tc.d {
				t.Errorf("Sleep(%v) returned after %v, before the wait was over", tc.d, time.Since(start))
			}
		})
	}
}

// TestSleepCancelDuring: a context canceled while Sleep waits ends the wait.
func TestSleepCancelDuring(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Sleep(ctx, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
}
