package mapping

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func TestMap(t *testing.T) {
	const in = `{"type":"contact.updated","data":{"first":"Ada","last":"Lovelace","Email":"ADA@X.IO","score":4},"tmp":1}`
	tests := []struct {
		name string
		cfg  Config
		want map[string]string // path -> raw JSON; "" means absent
	}{
		{
			name: "set from expressions reads the body before the step",
			cfg: Config{Set: map[string]string{
				"data.full_name": `data.first + " " + data.last`,
				"data.score":     `data.score * 2`,
				"data.double":    `data.score * 10`, // sees the old score
				"flags.hot":      `data.score > 3`,
			}},
			want: map[string]string{"data.full_name": `"Ada Lovelace"`, "data.score": `8`, "data.double": `40`, "flags.hot": `true`},
		},
		{
			name: "rename moves raw values",
			cfg:  Config{Rename: map[string]string{"data.Email": "email", "missing": "x"}},
			want: map[string]string{"email": `"ADA@X.IO"`, "data.Email": "", "x": ""},
		},
		{
			name: "delete",
			cfg:  Config{Delete: []string{"tmp", "data.score", "nope"}},
			want: map[string]string{"tmp": "", "data.score": "", "data.first": `"Ada"`},
		},
		{
			name: "set, then rename, then delete",
			cfg: Config{
				Set:    map[string]string{"email": `lower(data.Email)`},
				Rename: map[string]string{"email": "contact.email"},
				Delete: []string{"data"},
			},
			want: map[string]string{"contact.email": `"ada@x.io"`, "email": "", "data": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(pipelinetest.BuildContext(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ev := &pipeline.Event{ID: "e", Payload: []byte(in), Body: []byte(in)}
			ev.Body = ev.Payload
			out, err := m.Apply(context.Background(), []*pipeline.Event{ev})
			if err != nil || len(out) != 1 {
				t.Fatalf("Apply: %v (%d out)", err, len(out))
			}
			if string(ev.Payload) != in {
				t.Fatalf("payload changed: %s", ev.Payload)
			}
			for p, want := range tt.want {
				got := gjson.GetBytes(ev.Body, p)
				if want == "" {
					if got.Exists() {
						t.Errorf("%s = %s, want absent", p, got.Raw)
					}
					continue
				}
				if got.Raw != want {
					t.Errorf("%s = %s, want %s (body %s)", p, got.Raw, want, ev.Body)
				}
			}
		})
	}
}

func TestMapFailingExpressionDeadLetters(t *testing.T) {
	m, err := New(pipelinetest.BuildContext(), Config{Set: map[string]string{"n": `data.score + 1`}})
	if err != nil {
		t.Fatal(err)
	}
	in := []*pipeline.Event{
		{ID: "ok", Body: []byte(`{"data":{"score":1}}`)},
		{ID: "bad", Body: []byte(`{"data":{"score":"x"}}`)},
		{ID: "ok2", Body: []byte(`{"data":{"score":2}}`)},
	}
	out, err := m.Apply(context.Background(), in)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[0].Index != 1 || !pipeline.IsPermanent(be.Failures[0].Err) {
		t.Fatalf("want event 1 failed permanently, got %v", err)
	}
	if !strings.Contains(be.Failures[0].Err.Error(), "data.score + 1") {
		t.Errorf("reason %q does not name the expression", be.Failures[0].Err)
	}
	if len(out) != 2 || out[0].ID != "ok" || out[1].ID != "ok2" {
		t.Fatalf("survivors %v", out)
	}
	if got := gjson.GetBytes(out[1].Body, "n").Int(); got != 3 {
		t.Errorf("n = %d, want 3", got)
	}
}

func TestMapConfigErrors(t *testing.T) {
	reg := pipeline.NewRegistry()
	Register(reg)
	pipeline.RegisterSource(reg, "src", "", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) { return nil, nil })
	pipeline.RegisterSink(reg, "dst", "", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return nil, nil })
	tests := []struct {
		name, doc, want string
	}{
		{"bad set expression", "      set:\n        ok: 'type'\n        bad: 'data.x +'\n", "p.yaml:8: transforms[0].map.set.bad:"},
		{"nothing to do", "      delete: []\n", "transforms[0].map.set: map needs at least one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "name: t\nsource:\n  src: {}\ntransforms:\n  - map:\n" + tt.doc + "sinks:\n  - dst: {}\n"
			_, err := pipeline.Load("p.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want %q", err, tt.want)
			}
		})
	}
}
