package pipeline_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestReadiness(t *testing.T) {
	down, gone := errors.New("brokers down"), errors.New("gone")
	steps := []struct {
		set       error
		wantPrev  error
		wantReady error
	}{
		{nil, nil, nil},    // zero value is ready; clearing it is a no-op
		{down, nil, down},  // becomes not ready
		{gone, down, gone}, // a new reason replaces the old
		{nil, gone, nil},   // ready again: the transition returns the reason
		{nil, nil, nil},    // still ready
	}
	var r pipeline.Readiness
	for i, s := range steps {
		if prev := r.Set(s.set); prev != s.wantPrev {
			t.Errorf("step %d: Set(%v) returned %v, want %v", i, s.set, prev, s.wantPrev)
		}
		if got := r.Ready(); got != s.wantReady {
			t.Errorf("step %d: Ready() = %v, want %v", i, got, s.wantReady)
		}
	}
}

// TestReadinessConcurrent: setters and readers at once, under -race.
func TestReadinessConcurrent(t *testing.T) {
	var r pipeline.Readiness
	down := errors.New("down")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				if (i+j)%2 == 0 {
					r.Set(down)
				} else {
					r.Set(nil)
				}
				if err := r.Ready(); err != nil && err != down {
					t.Errorf("Ready() = %v", err)
				}
			}
		}()
	}
	wg.Wait()
}
