package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// layoutStep is a pass-through transform that may write and/or read
// layouts; told records what Build told a writer (nil: never told).
type layoutStep struct {
	reads bool
	told  *bool
}

func (s *layoutStep) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	return in, nil
}
func (s *layoutStep) Close(context.Context) error { return nil }

type writerStep struct{ *layoutStep }

func (w writerStep) WriteLayouts(on bool) { w.told = &on }

type readerStep struct{ *layoutStep }

func (r readerStep) ReadsLayouts() bool { return r.reads }

// Build tells a layout writer whether a LATER transform reads layouts, so
// decode records them only for a map step after it.
func TestBuildTellsLayoutWritersWhetherALaterStepReads(t *testing.T) {
	for _, c := range []struct {
		steps string // w: writer, r: reader that reads, n: reader that does not, x: neither
		want  []any  // per writer, in order: what it was told
	}{
		{"w r", []any{true}},
		{"w", []any{false}},
		{"r w", []any{false}},
		{"w n", []any{false}},
		{"w x r", []any{true}},
		{"w w r", []any{true, true}},
		{"w r w", []any{true, false}},
	} {
		t.Run(c.steps, func(t *testing.T) {
			reg := pipeline.NewRegistry()
			pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
			var writers []*layoutStep
			pipeline.RegisterTransform(reg, "step", "test step", func(_ pipeline.BuildContext, k *struct{ Kind string }) (pipeline.Transform, error) {
				s := &layoutStep{}
				switch k.Kind {
				case "w":
					writers = append(writers, s)
					return writerStep{s}, nil
				case "r", "n":
					s.reads = k.Kind == "r"
					return readerStep{s}, nil
				}
				return s, nil
			})
			var ts []string
			for _, k := range strings.Fields(c.steps) {
				ts = append(ts, fmt.Sprintf("{step: {kind: %s}}", k))
			}
			doc := fmt.Sprintf("name: wire\nsource: {mem: {}}\ntransforms: [%s]\nsinks: [{mem: {index: 0}}]\n", strings.Join(ts, ", "))
			cfg, err := pipeline.Load("wire.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pipeline.Build(context.Background(), cfg, reg); err != nil {
				t.Fatal(err)
			}
			if len(writers) != len(c.want) {
				t.Fatalf("%d writers built, want %d", len(writers), len(c.want))
			}
			for i, w := range writers {
				if w.told == nil {
					t.Fatalf("writer %d was never told", i)
				}
				if *w.told != c.want[i] {
					t.Errorf("writer %d told %v, want %v", i, *w.told, c.want[i])
				}
			}
		})
	}
}
