package enrich

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
)

// TestApplyAllocatesWhatItWrites: a batch's canonical bodies are written
// into chunks that hold about what is written, not a buffer sized for
// every envelope plus 256 bytes (the bench's envelopes of 1.5–2.5 KB map
// to bodies of well under half that).
func TestApplyAllocatesWhatItWrites(t *testing.T) {
	g := generate.NewGenerator(generate.Workload{Mix: generate.Mix{CRM: 1, ATS: 1, Email: 1}, MinSize: 1500, MaxSize: 2500, Entities: 1000, Seed: 3}, func() time.Time { return fixed })
	e := newEnrich(t, Config{StripTags: true})
	e.now = func() time.Time { return fixed }
	batch := make([]*pipeline.Event, 500)
	in := 0
	for i := range batch {
		ev := &pipeline.Event{}
		g.Next(ev, nil)
		ev.Body = ev.Payload
		in += len(ev.Body)
		batch[i] = ev
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := e.Apply(context.Background(), batch)
	runtime.ReadMemStats(&after)
	if err != nil || len(out) != len(batch) {
		t.Fatalf("Apply: %d of %d, %v", len(out), len(batch), err)
	}
	written := 0
	for _, ev := range out {
		written += len(ev.Body)
	}
	alloc := int(after.TotalAlloc - before.TotalAlloc)
	// One chunk of slack: the last chunk's unused end and the batch's own
	// few small allocations.
	if limit := written + written/8 + arenaChunk; alloc > limit {
		t.Errorf("Apply allocated %d B for %d B of bodies written (%d B of envelopes); want at most %d", alloc, written, in, limit)
	}
	t.Logf("envelopes %d B, bodies written %d B, allocated %d B", in, written, alloc)
}
