package dedupe

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemoryStoreFootprint fills a 1M-key window with event-id-sized
// keys and reports the heap the table holds per key and how long a full GC
// takes with it live:
//
//	go test -run '^$' -bench MemoryStoreFootprint -benchtime 2x ./transforms/dedupe/
func BenchmarkMemoryStoreFootprint(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		keys := make([]string, n)
		for j := range keys {
			keys[j] = "bench.max.dn9pdhtx4xir/" + strconv.Itoa(j%12) + "/" + strconv.Itoa(j)
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := newMemoryStore(n, time.Hour, time.Now)
		for j := 0; j < n; j += 500 {
			m.mark(keys[j:min(j+500, n)])
		}
		runtime.GC()
		runtime.ReadMemStats(&after) // the keys are live in both readings
		runtime.KeepAlive(keys)
		keys = nil
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/key")
		t0 := time.Now()
		runtime.GC()
		b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "gc-ms")
		runtime.KeepAlive(m)
	}
}
