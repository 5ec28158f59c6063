package eval

import (
	"reflect"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestCompileAndRun(t *testing.T) {
	body := `{"type":"contact.updated","n":5,"f":1.5,"ok":true,"nil":null,
	  "data":{"email":"Ada@X.io","x-y":2,"a.b":3,"tags":["t1","t2"],"props":{"deep":{"v":"z"}}}}`
	ev := &pipeline.Event{ID: "e", Body: []byte(body)}
	tests := []struct {
		src   string
		want  any
		paths []string
	}{
		{`type`, "contact.updated", []string{"type"}},
		{`n * 2`, 10, []string{"n"}},
		{`f + 1`, 2.5, []string{"f"}},
		{`ok && missing == nil`, true, []string{"ok", "missing"}},
		{`missing`, nil, []string{"missing"}},
		{`data.email`, "Ada@X.io", []string{"data.email"}},
		{`lower(data.email)`, "ada@x.io", []string{"data.email"}},
		{`data["x-y"] + 1`, 3, []string{"data.x-y"}},
		{`data["a.b"]`, 3, []string{`data.a\.b`}},
		{`data.tags[1]`, "t2", []string{"data.tags.1"}},
		{`data.props.deep.v`, "z", []string{"data.props.deep.v"}},
		{`data?.nope?.x`, nil, []string{"data.nope.x"}},
		{`"t1" in data.tags`, true, []string{"data.tags"}},
		{`all(data.tags, # startsWith "t")`, true, []string{"data.tags"}},
		{`let v = n; v + 1`, 6, []string{"n"}},
		{`map(data.tags, upper(#))`, []any{"T1", "T2"}, []string{"data.tags"}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := Compile(tt.src, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Run(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("= %#v, want %#v", got, tt.want)
			}
			if !slices.Equal(p.Paths, tt.paths) {
				t.Errorf("paths %q, want %q", p.Paths, tt.paths)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, src := range []string{``, `type ==`, `foo(`, `"a" +`, `nosuchfunc(type)`} {
		if _, err := Compile(src, false); err == nil {
			t.Errorf("Compile(%q) accepted", src)
		}
	}
	if _, err := Compile(`"not a bool"`, true); err == nil {
		t.Error("a string constant compiled as a boolean expression")
	}
}

func TestRunBool(t *testing.T) {
	p, err := Compile(`n > 3`, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		body    string
		want    bool
		wantErr bool
	}{
		{`{"n":5}`, true, false},
		{`{"n":1}`, false, false},
		{`{"n":"x"}`, false, true},
		{`{}`, false, true},
	}
	for _, tt := range tests {
		got, err := p.RunBool(&pipeline.Event{Body: []byte(tt.body)})
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: %v, %v; want %v, error %v", tt.body, got, err, tt.want, tt.wantErr)
		}
	}
	ev := &pipeline.Event{Body: []byte(`{"n":5,"type":"x"}`)}
	q, _ := Compile(`type != "heartbeat" && n > 3`, true)
	if a := testing.AllocsPerRun(500, func() { q.RunBool(ev) }); a > 2 {
		t.Errorf("RunBool allocates %.0f times per event, want at most 2", a)
	}
}
