package dedupe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
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
	stores := []struct {
		name  string
		build func(t *testing.T) *Dedupe
	}{
		{"memory", func(t *testing.T) *Dedupe { d, _ := newMemory(t, Config{}); d.now = time.Now; return d }},
		{"redis", func(t *testing.T) *Dedupe {
			testenv.RedisAddr(t)
			return newRedis(t, fmt.Sprintf("sluice-test:%d:", time.Now().UnixNano()))
		}},
	}
	for _, st := range stores {
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
				err := runOnce(t, d, src, sink)
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

func runOnce(t *testing.T, d *Dedupe, src *pipelinetest.Source, sink *pipelinetest.Sink) error {
	t.Helper()
	reg := pipeline.NewRegistry()
	pipeline.RegisterSource(reg, "mem", "", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) { return src, nil })
	pipeline.RegisterTransform(reg, "dedupe", "", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) { return keepOpen{d}, nil })
	pipeline.RegisterSink(reg, "mem", "", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := "name: t\nsource:\n  mem: {}\ntransforms:\n  - dedupe: {}\nsinks:\n  - mem: {}\nbatch: {max_events: 10, max_wait: 10ms}\n"
	cfg, err := pipeline.Load("t.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	return p.Run(ctx)
}

// keepOpen shares one Dedupe across runs (as one across a process's
// partitions): the runner's Close must not close it.
type keepOpen struct{ *Dedupe }

func (k keepOpen) Close(context.Context) error { return nil }
