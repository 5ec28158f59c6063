package file

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestConformance runs the source table on a JSON-lines file: a finite
// source with no checkpoint, read in batches of 4 lines.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		path := filepath.Join(t.TempDir(), "in.jsonl")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var c Config
		c.SetDefaults()
		c.Path, c.BatchSize = path, 4
		fed := 0
		return &conformance.SourceUnderTest{
			Finite: true,
			Feed: func(t *testing.T, n int) []string {
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var ids []string
				for range n {
					ev := conformance.Event(fmt.Sprintf("line-%d", fed), "k", fed)
					fed++
					if _, err := f.Write(append(ev.Body, '\n')); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, ev.ID)
				}
				return ids
			},
			Open: func(t *testing.T) pipeline.Source {
				s, err := New(pipelinetest.BuildContext(), c)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}
