package elasticsearch

import (
	"runtime"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// TestKeepsOneBulkBufferPerLane: the pipeline's lanes may run that many
// Writes at once; each one's bulk buffers are kept across garbage
// collections (two were kept before: the other lanes' were made anew).
func TestKeepsOneBulkBufferPerLane(t *testing.T) {
	for _, tt := range []struct{ lanes, kept int }{{0, 2}, {1, 2}, {4, 4}, {8, 8}, {1000, 64}} {
		bc := pipeline.NewBuildContext("p", "sinks[0].elasticsearch", nil, nil)
		bc.Lanes = tt.lanes
		var c Config
		c.SetDefaults()
		c.URLs = []string{"http://127.0.0.1:1"}
		c.Index = *pipeline.MustParseTemplate("i")
		s, err := New(bc, c)
		if err != nil {
			t.Fatal(err)
		}
		n := tt.kept + 2 // more than kept: the rest go to the sync.Pool
		held := map[*work]bool{}
		items := make([]*work, n)
		for i := range items {
			items[i] = s.work.Get()
			held[items[i]] = true
		}
		for _, w := range items {
			s.work.Put(w)
		}
		runtime.GC()
		runtime.GC() // a sync.Pool is empty after two
		back := 0
		for range n {
			if held[s.work.Get()] {
				back++
			}
		}
		if back != tt.kept {
			t.Errorf("lanes %d: %d bulk buffers kept across collections, want %d", tt.lanes, back, tt.kept)
		}
	}
}
