package eval

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

var directExprs = []struct {
	src    string
	direct bool
}{
	{`email`, true},
	{`data.email`, true},
	{`"lit"`, true},
	{`lower(email)`, true},
	{`upper(email)`, true},
	{`trim(email)`, true},
	{`lower(trim(data.email))`, true},
	{`split(lower(email), "@")[1]`, true},
	{`split(email, "@")[0]`, true},
	{`split(email, "--")[2]`, true},
	{`now()`, true},
	{`split(email, "@")[-1]`, false},
	{`split(email, "")[0]`, false},
	{`email + "x"`, false},
	{`lower(email) == "a"`, false},
	{`data?.email`, false},
	{`trim(email, "x")`, false},
}

func TestDirectCoversExpressions(t *testing.T) {
	for _, e := range directExprs {
		p, err := Compile(e.src, false)
		if err != nil {
			t.Fatalf("%s: %v", e.src, err)
		}
		if got := p.Direct() != nil; got != e.direct {
			t.Errorf("%s: Direct() != nil is %v, want %v", e.src, got, e.direct)
		}
	}
}

// FuzzDirect holds Direct to the VM: whenever Direct answers, the VM
// answers the same string without error (now() compares by type).
func FuzzDirect(f *testing.F) {
	for _, s := range []string{
		`{"email":"Ada.Lovelace@Example.COM","data":{"email":" X@y "}}`,
		`{"email":"ÄDA@ÉXAMPLE.com"}`, `{"email":1}`, `{"email":null}`, `{}`, `{"email":"a--b--c--d"}`,
		`{"email":"no-at-sign"}`, `{"email":"a\u0041@b"}`, `{"email":"\ud800@x"}`, `{"email":"a@b@c"}`,
	} {
		f.Add([]byte(s))
	}
	type prog struct {
		p *Program
		d *Direct
	}
	var progs []prog
	for _, e := range directExprs {
		p, err := Compile(e.src, false)
		if err != nil {
			f.Fatal(err)
		}
		if d := p.Direct(); d != nil {
			progs = append(progs, prog{p, d})
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev := &pipeline.Event{Body: body}
		s := &Scratch{Now: time.Now()}
		for _, pr := range progs {
			s.Reset()
			got, ok := pr.d.Eval(ev, s)
			if !ok {
				continue
			}
			want, err := pr.p.Run(ev)
			if err != nil {
				t.Fatalf("%s on %q: direct %q, VM error %v", pr.p, body, got.Str, err)
			}
			switch w := want.(type) {
			case string:
				if got.Kind != KindString || got.Str != w {
					t.Fatalf("%s on %q: direct %+v, VM %q", pr.p, body, got, w)
				}
			case time.Time:
				if got.Kind != KindTime {
					t.Fatalf("%s on %q: direct %+v, VM a time", pr.p, body, got)
				}
			default:
				t.Fatalf("%s on %q: direct %+v, VM %T %v", pr.p, body, got, want, want)
			}
		}
	})
}
