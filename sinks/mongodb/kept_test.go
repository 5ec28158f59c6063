package mongodb

import (
	"runtime"
	"testing"

	"github.com/sluicehq/sluice/internal/reuse"
	"github.com/sluicehq/sluice/pipeline"
)

// keptAcrossGC puts n items into p, collects twice (a sync.Pool is empty
// after two) and counts how many of them p gives back.
func keptAcrossGC[T any](p *reuse.Pool[T], n int) int {
	held := map[*T]bool{}
	items := make([]*T, n)
	for i := range items {
		items[i] = p.Get()
		held[items[i]] = true
	}
	for _, it := range items {
		p.Put(it)
	}
	runtime.GC()
	runtime.GC()
	back := 0
	for range n {
		if held[p.Get()] {
			back++
		}
	}
	return back
}

// TestKeepsOneWriteBufferPerLane: the pipeline's lanes may run that many
// Writes at once; the document arenas and op indexes of all of them are
// kept across garbage collections (two were kept before, and the bench
// consumer's four lanes made the others anew: ~10 MB per 30,000 events),
// and the insert commands of each.
func TestKeepsOneWriteBufferPerLane(t *testing.T) {
	for _, tt := range []struct{ lanes, kept int }{{0, 2}, {1, 2}, {4, 4}, {8, 8}, {1000, 64}} {
		bc := pipeline.NewBuildContext("p", "sinks[0].mongodb", nil, nil)
		bc.Lanes = tt.lanes
		var c Config
		c.SetDefaults()
		c.URI = "mongodb://127.0.0.1:1"
		c.Database = "d"
		s, err := New(bc, c)
		if err != nil {
			t.Fatal(err)
		}
		if got := keptAcrossGC(s.arenas, tt.kept+2); got != tt.kept {
			t.Errorf("lanes %d: %d document arenas kept across collections, want %d", tt.lanes, got, tt.kept)
		}
		if got := keptAcrossGC(s.scratch, tt.kept+2); got != tt.kept {
			t.Errorf("lanes %d: %d op indexes kept, want %d", tt.lanes, got, tt.kept)
		}
		cmds := tt.kept * min(c.Parallelism, 4)
		if got := keptAcrossGC(s.cmdBufs, cmds+2); got != cmds {
			t.Errorf("lanes %d: %d insert command buffers kept, want %d", tt.lanes, got, cmds)
		}
	}
}
