package pipeline

import (
	"strings"
	"testing"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr, wantErr string
	}{
		{"", ""},
		{"127.0.0.1:9102", ""},
		{":9102", ""},
		{"[::1]:9102", ""},
		{"localhost:0", ""},
		{"9102", `"9102" is not host:port (write 127.0.0.1:9102, or :9102 for every interface)`},
		{"127.0.0.1", "is not host:port"},
		{"127.0.0.1:http", "the port must be a number"},
		{"127.0.0.1:70000", "the port must be a number"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkListen(tc.addr)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkListen(%q) = %v", tc.addr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("checkListen(%q) = %v, want %q", tc.addr, err, tc.wantErr)
			}
		})
	}
}

func TestMetricsListenValidated(t *testing.T) {
	reg := NewRegistry()
	RegisterSource(reg, "src", "", func(BuildContext, *struct{}) (Source, error) { return nil, nil })
	RegisterSink(reg, "snk", "", func(BuildContext, *struct{}) (Sink, error) { return nil, nil })
	_, err := Load("p.yaml", []byte("name: x\nsource: {src: {}}\nsinks: [{snk: {}}]\nmetrics: {listen: \"9102\"}\n"), reg, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), `p.yaml:4: metrics.listen: "9102" is not host:port`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSchemaHas(t *testing.T) {
	s := NewSchema("id", "entity.kind", "attributes.*")
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"id", true}, {"entity", true}, {"entity.kind", true}, {"entity.knd", false},
		{"attributes", true}, {"attributes.anything.deep", true}, {"actor.email", false}, {"ids", false},
	} {
		if got := s.Has(tc.path); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	s.Remove("entity")
	if s.Has("entity.kind") || s.Has("entity") {
		t.Error("Remove(entity) kept entity.kind")
	}
	c := s.Clone()
	c.Add("x.y")
	if s.Has("x.y") || !c.Has("x") {
		t.Error("Clone shares state")
	}
	var unknown *Schema
	if unknown.Clone() != nil {
		t.Error("nil clone")
	}
}
