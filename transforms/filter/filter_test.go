package filter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func body(id, b string) *pipeline.Event {
	return &pipeline.Event{ID: id, Payload: []byte(b), Body: []byte(b)}
}

func ids(evs []*pipeline.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestFilter(t *testing.T) {
	batch := func() []*pipeline.Event {
		return []*pipeline.Event{
			body("a", `{"type":"contact.updated","data":{"score":12,"email":"a@acme.com"}}`),
			body("b", `{"type":"heartbeat"}`),
			body("c", `{"type":"contact.created","data":{"score":3,"email":"c@gmail.com"}}`),
			body("d", `{"type":"lead.converted","data":{"score":"high"}}`),
		}
	}
	tests := []struct {
		name   string
		keep   string
		want   []string
		failed []int // permanent failures, by index
	}{
		{"drop heartbeats", `type != "heartbeat"`, []string{"a", "c", "d"}, nil},
		{"nested field and operators", `data.email endsWith "@acme.com" || type startsWith "lead."`, []string{"a", "d"}, nil},
		{"missing fields are nil", `data?.score == nil`, []string{"b"}, nil},
		{"keeps all", `true`, []string{"a", "b", "c", "d"}, nil},
		{"a type error fails that event only", `data.score > 10`, []string{"a"}, []int{1, 3}},
		{"builtins", `type in ["contact.created", "lead.converted"] && len(type) > 3`, []string{"c", "d"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(pipelinetest.BuildContext(), Config{Keep: tt.keep})
			if err != nil {
				t.Fatal(err)
			}
			out, err := f.Apply(context.Background(), batch())
			if got := ids(out); !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
			var failed []int
			var be *pipeline.BatchError
			if errors.As(err, &be) {
				for _, fe := range be.Failures {
					if !pipeline.IsPermanent(fe.Err) {
						t.Errorf("failure %d is not permanent: %v", fe.Index, fe.Err)
					}
					if !strings.Contains(fe.Err.Error(), tt.keep) {
						t.Errorf("reason %q does not name the expression", fe.Err)
					}
					failed = append(failed, fe.Index)
				}
			} else if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !slices.Equal(failed, tt.failed) {
				t.Errorf("failed %v, want %v", failed, tt.failed)
			}
		})
	}
}

func TestFilterKeepsBatchWhenAllPass(t *testing.T) {
	f, err := New(pipelinetest.BuildContext(), Config{Keep: `type != "heartbeat"`})
	if err != nil {
		t.Fatal(err)
	}
	in := []*pipeline.Event{body("a", `{"type":"x"}`), body("b", `{"type":"y"}`)}
	out, err := f.Apply(context.Background(), in)
	if err != nil || &out[0] != &in[0] {
		t.Fatalf("want the input slice back unchanged, err %v", err)
	}
	allocs := testing.AllocsPerRun(200, func() { f.Apply(context.Background(), in) })
	if allocs > 2*float64(len(in))*3 {
		t.Errorf("%.0f allocs for %d events", allocs, len(in))
	}
}

func TestCompileErrorIsAConfigErrorAtTheLine(t *testing.T) {
	reg := pipeline.NewRegistry()
	Register(reg)
	pipeline.RegisterSource(reg, "src", "", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) { return nil, nil })
	pipeline.RegisterSink(reg, "dst", "", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return nil, nil })
	doc := `name: t
source:
  src: {}
transforms:
  - filter:
      keep: 'type != "heartbeat" &&'
sinks:
  - dst: {}
`
	_, err := pipeline.Load("p.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("Load accepted an expression that does not compile")
	}
	if !strings.Contains(err.Error(), "p.yaml:6: transforms[0].filter.keep:") {
		t.Fatalf("error %q is not placed at p.yaml:6 transforms[0].filter.keep", err)
	}
}
