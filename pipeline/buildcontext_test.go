package pipeline_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestBuildContextLanes: a sink is told how many batches the pipeline
// processes at once (delivery.lanes), so it can keep that many buffers.
func TestBuildContextLanes(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want int
	}{
		{"", 0}, // the default: cfg.Delivery.Lanes after Load
		{"delivery: {lanes: 7}\n", 7},
		{"delivery: {lanes: 1}\n", 1},
	} {
		src := pipelinetest.NewSource()
		reg := pipeline.NewRegistry()
		pipelinetest.Register(reg, src, &pipelinetest.Sink{})
		got := -1
		pipeline.RegisterSink(reg, "probe", "test", func(bc pipeline.BuildContext, _ *struct{}) (pipeline.Sink, error) {
			got = bc.Lanes
			return &pipelinetest.Sink{}, nil
		})
		cfg, err := pipeline.Load("l.yaml", []byte("name: l\nsource: {mem: {}}\nsinks: [{probe: {}}]\n"+tt.yaml), reg, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		want := tt.want
		if tt.yaml == "" {
			want = cfg.Delivery.Lanes // the default
			if want < 1 {
				t.Fatalf("default lanes %d", want)
			}
		}
		// In-memory components only: nothing to close when it is not run.
		if _, err := pipeline.Build(context.Background(), cfg, reg); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%q: sink built with Lanes %d, want %d", tt.yaml, got, want)
		}
	}
}
