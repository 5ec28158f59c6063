package pipeline

import (
	"context"
	"io"
	"net/http/httptest"
	"net/url"
	"testing"
)

type nopSource struct{}

func (nopSource) Read(context.Context) ([]*Event, AckFunc, error) { return nil, nil, io.EOF }
func (nopSource) Close(context.Context) error                     { return nil }

type nopSink struct{}

func (nopSink) Write(context.Context, []*Event) error { return nil }
func (nopSink) Close(context.Context) error           { return nil }

// FuzzTapQuery: /tap's query is outside input; any query is a tapper or a
// 400 message, never a panic.
func FuzzTapQuery(f *testing.F) {
	reg := NewRegistry()
	RegisterSource(reg, "src", "", func(BuildContext, *struct{}) (Source, error) { return nopSource{}, nil })
	RegisterSink(reg, "snk", "", func(BuildContext, *struct{}) (Sink, error) { return nopSink{}, nil })
	cfg, err := Load("p.yaml", []byte("name: x\nsource: {src: {}}\nsinks: [{snk: {}}]\nmetrics: {listen: 127.0.0.1:0, tap: true}\n"), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		f.Fatal(err)
	}
	p, err := Build(context.Background(), cfg, reg)
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range []string{"component=sinks[0]&stage=before&rate=5&limit=3", "component=source", "component=x&rate=-1", "component=sinks&limit=1e9", "rate=NaN&component=sinks[0]", "component=sinks[0]&filter=a"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/tap?"+q.Encode(), nil)
		sub, limit, err := p.parseTap(r, func(string) (func(*Event) bool, error) { return func(*Event) bool { return true }, nil })
		if err != nil {
			return
		}
		if sub.rate <= 0 || sub.rate > TapMaxRate || limit < 0 || cap(sub.out) != tapBuffer {
			t.Fatalf("accepted %q as rate %v limit %d", raw, sub.rate, limit)
		}
	})
}
