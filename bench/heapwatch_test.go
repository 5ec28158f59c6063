package bench

import (
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

// heapWatch samples the GC's live heap and heap goal while a benchmark
// runs (every 50 ms, a few microseconds each), and writes one heap profile
// when the sink first reaches a given count.
type heapWatch struct {
	sink       *discard
	done       chan struct{}
	wg         sync.WaitGroup
	live, goal uint64
}

func watchHeap(b *testing.B, profile string, at int64) *heapWatch {
	b.Helper()
	w := &heapWatch{sink: &discard{}, done: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			metrics.Read(samples)
			w.live = max(w.live, samples[0].Value.Uint64())
			w.goal = max(w.goal, samples[1].Value.Uint64())
			if profile != "" && w.sink.events.Load() >= at {
				writeHeapProfile(b, profile)
				profile = ""
			}
		}
	}()
	return w
}

// stop ends the sampling and returns the peaks seen.
func (w *heapWatch) stop() (live, goal uint64) {
	close(w.done)
	w.wg.Wait()
	return w.live, w.goal
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Error(err)
	}
}
