package filter

import (
	"log/slog"
	"sync/atomic"
)

// DropAllThreshold is how many events a filter must have seen, all of them
// dropped, before it warns: a keep expression that is never true (a typo in
// a field name reads nil) looks like a quiet pipeline otherwise.
const DropAllThreshold = 10000

// dropAll counts what a filter saw and dropped until the first event is
// kept, and warns once when it has dropped every one of DropAllThreshold.
// Two atomic adds per batch; nothing once an event was kept or it warned.
type dropAll struct {
	seen, dropped atomic.Int64
	done          atomic.Bool // an event was kept, or the warning was logged
}

func (d *dropAll) observe(log *slog.Logger, seen, dropped int) {
	if d.done.Load() {
		return
	}
	s := d.seen.Add(int64(seen))
	dr := d.dropped.Add(int64(dropped))
	if dr < s { // something passed or failed: not 100% dropped
		d.done.Store(true)
		return
	}
	if s >= DropAllThreshold && d.done.CompareAndSwap(false, true) {
		log.Warn("filter has dropped every event so far: check its keep expression (a misspelt field reads as nil)", "events", s)
	}
}
