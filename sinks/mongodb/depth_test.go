package mongodb

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// A body nested past pipeline.DefaultMaxJSONDepth is a permanent per-event
// error naming the limit, found before the recursive validator and
// encoders (a 10 MB line of `[` used to overflow the stack).
func TestDeepBodyFailsTheEventNotTheProcess(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 10<<20) + `}`
	ok := `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	for _, mode := range []string{ModeInsert, ModeUpsert} {
		t.Run(mode, func(t *testing.T) {
			s, err := New(pipelinetest.BuildContext(), benchConfig(mode, "mongodb://127.0.0.1:1/", "depth"))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = s.build(&pipeline.Event{ID: "e1", Payload: []byte(deep), Body: []byte(deep)}, new([]byte))
			if err == nil || !strings.Contains(err.Error(), "nested deeper than 512") {
				t.Fatalf("build(deep) = %v, want the depth error", err)
			}
			if _, _, err := s.build(&pipeline.Event{ID: "e2", Payload: []byte(ok), Body: []byte(ok)}, new([]byte)); err != nil && mode == ModeInsert {
				t.Fatalf("build(100 levels) = %v", err)
			}
		})
	}
}
