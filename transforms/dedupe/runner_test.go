package dedupe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestRedeliveryAfterFailedWriteThroughRunner drives the real runner: the
// sink fails a batch for good (no dead letter, so the batch is acked with
// an error and the run stops), the source redelivers the same events to
// the same dedupe step, and they must be written rather than dropped as
// duplicates of themselves. A third delivery, after they were stored, is
// dropped.
func TestRedeliveryAfterFailedWriteThroughRunner(t *testing.T) {
	for _, st := range runnerStores("sluice-test") {
		t.Run(st.name, func(t *testing.T) {
			d := st.build(t)
			batch := func() []*pipeline.Event {
				return []*pipeline.Event{ev("e1", ""), ev("e2", ""), ev("e1", "")}
			}
			runs := []struct {
				failWrite bool
				wantErr   bool
				written   []string
			}{
				{failWrite: true, wantErr: true}, // write fails: acked with an error
				{written: []string{"e1", "e2"}},  // the redelivery passes
				{written: nil},                   // a copy after it was stored is dropped
			}
			for i, r := range runs {
				sink := &pipelinetest.Sink{}
				if r.failWrite {
					sink.WriteFunc = func(context.Context, int, []*pipeline.Event) error {
						return pipeline.Permanent(errors.New("mapping conflict"))
					}
				}
				src := pipelinetest.NewSource(batch())
				err := runOnce(t, d, src, sink, nil)
				if (err != nil) != r.wantErr {
					t.Fatalf("run %d: err %v, want error %v", i, err, r.wantErr)
				}
				acks := src.Acks()
				if len(acks) != 1 || !acks[0].Acked || (acks[0].Err != nil) != r.wantErr {
					t.Fatalf("run %d: acks %+v", i, acks)
				}
				var got []string
				for _, w := range sink.Writes() {
					got = append(got, w.ID)
				}
				sort.Strings(got)
				if !slices.Equal(got, r.written) {
					t.Fatalf("run %d: written %v, want %v", i, got, r.written)
				}
				if d.remote != nil {
					waitIdle(t, d) // the marks reached redis before the next delivery
				}
			}
		})
	}
}

// runnerStores are the stores the runner tests drive dedupe over: memory,
// and the test stack's Redis under a key prefix of the test's own.
func runnerStores(prefix string) []struct {
	name  string
	build func(t *testing.T) *Dedupe
} {
	return []struct {
		name  string
		build func(t *testing.T) *Dedupe
	}{
		{"memory", func(t *testing.T) *Dedupe { d, _ := newMemory(t, Config{}); d.now = time.Now; return d }},
		{"redis", func(t *testing.T) *Dedupe {
			testenv.RedisAddr(t)
			return newRedis(t, fmt.Sprintf("%s:%d:", prefix, time.Now().UnixNano()))
		}},
	}
}

// runOnce is one delivery of src through the real runner: mem source →
// dedupe (d, kept open across deliveries) → mem sink. With dead set, a
// poison step runs before dedupe and dead is the dead-letter sink.
func runOnce(t *testing.T, d *Dedupe, src *pipelinetest.Source, sink, dead *pipelinetest.Sink) error {
	t.Helper()
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, sink, dead)
	pipeline.RegisterTransform(reg, "poison", "", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) {
		return pipelinetest.TransformFunc(poison), nil
	})
	pipeline.RegisterTransform(reg, "dedupe", "", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) { return keepOpen{d}, nil })
	doc := "name: t\nsource:\n  mem: {}\ntransforms:\n  - dedupe: {}\nsinks:\n  - mem: {index: 0}\nbatch: {max_events: 10, max_wait: 10ms}\n"
	if dead != nil {
		doc = strings.Replace(doc, "  - dedupe", "  - poison: {}\n  - dedupe", 1) + "dead_letter:\n  mem: {index: 1}\n"
	}
	return pipelinetest.RunToEnd(t, "t.yaml", doc, reg)
}

// keepOpen shares one Dedupe across runs (as one across a process's
// partitions): the runner's Close must not close it.
type keepOpen struct{ *Dedupe }

func (k keepOpen) Close(context.Context) error { return nil }
