package generate

import (
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
)

// TestConformance runs the source table on a generator with a count: a
// finite source with no checkpoint, whose batches hold at most 7 events.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		var c Config
		c.SetDefaults()
		c.Count, c.BatchSize, c.Duplicates = 30, 7, 0
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return &conformance.SourceUnderTest{
			Open:   func(t *testing.T) pipeline.Source { return newSource(t, c) },
			Total:  int(c.Count),
			Finite: true,
		}
	})
}
