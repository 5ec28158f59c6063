package pipeline_test

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/internal/layouttest"
	"github.com/sluicehq/sluice/pipeline"
)

func TestLayoutReference(t *testing.T) {
	body := []byte(` { "a" : 1 ,"b":{"c":[1,"}"]},"\"q":"x"} `)
	l, ok := layouttest.Of(body)
	if !ok {
		t.Fatal("no layout")
	}
	want := []string{`"a" : 1`, `"b":{"c":[1,"}"]}`, `"\"q":"x"`}
	if l.Open != 1 || l.Close != uint32(len(body)-2) || len(l.Members) != len(want) {
		t.Fatalf("layout %+v", l)
	}
	for i, m := range l.Members {
		if got := string(body[m.Key:m.End]); got != want[i] {
			t.Errorf("member %d = %q, want %q", i, got, want[i])
		}
	}
}

func TestSetLayout(t *testing.T) {
	body := []byte(`{"a":1,"bb":"x"}`)
	good, _ := layouttest.Of(body)
	mod := func(f func(l *pipeline.Layout)) *pipeline.Layout {
		l := good
		l.Members = append([]pipeline.Member(nil), good.Members...)
		f(&l)
		return &l
	}
	tests := []struct {
		name string
		l    *pipeline.Layout
		ok   bool
	}{
		{"good", mod(func(*pipeline.Layout) {}), true},
		{"nil", nil, false},
		{"open not a brace", mod(func(l *pipeline.Layout) { l.Open = 1 }), false},
		{"close not a brace", mod(func(l *pipeline.Layout) { l.Close-- }), false},
		{"close past the end", mod(func(l *pipeline.Layout) { l.Close = 99 }), false},
		{"key not at a quote", mod(func(l *pipeline.Layout) { l.Members[1].Key++ }), false},
		{"members out of order", mod(func(l *pipeline.Layout) { l.Members[0], l.Members[1] = l.Members[1], l.Members[0] }), false},
		{"value before its key", mod(func(l *pipeline.Layout) { l.Members[0].Value = l.Members[0].Key }), false},
		{"empty value", mod(func(l *pipeline.Layout) { l.Members[0].End = l.Members[0].Value }), false},
		{"value past close", mod(func(l *pipeline.Layout) { l.Members[1].End = l.Close + 1 }), false},
		{"too many members", mod(func(l *pipeline.Layout) {
			l.Members = make([]pipeline.Member, pipeline.MaxLayoutMembers+1)
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &pipeline.Event{Body: body}
			if got := ev.SetLayout(tt.l); got != tt.ok {
				t.Fatalf("SetLayout = %v, want %v", got, tt.ok)
			}
			if got := ev.Layout() != nil; got != tt.ok {
				t.Fatalf("Layout() != nil is %v, want %v", got, tt.ok)
			}
		})
	}
	if (&pipeline.Event{}).SetLayout(&good) {
		t.Error("SetLayout took a layout for an event without a body")
	}
}

// TestLayoutDropped: every way Body changes drops the layout.
func TestLayoutDropped(t *testing.T) {
	tests := []struct {
		name   string
		change func(ev *pipeline.Event)
	}{
		{"Set", func(ev *pipeline.Event) { _ = ev.Set("a", 2) }},
		{"Set same size in place", func(ev *pipeline.Event) { _ = ev.Set("bb", "y") }},
		{"SetRaw", func(ev *pipeline.Event) { _ = ev.SetRaw("c", []byte(`3`)) }},
		{"Delete", func(ev *pipeline.Event) { _ = ev.Delete("a") }},
		{"Delete missing", func(ev *pipeline.Event) { _ = ev.Delete("zz") }},
		{"new body", func(ev *pipeline.Event) { ev.Body = []byte(`{"a":1,"bb":"x"}`) }},
		{"shorter body", func(ev *pipeline.Event) { ev.Body = ev.Body[:len(ev.Body)-1] }},
		{"nil body", func(ev *pipeline.Event) { ev.Body = nil }},
		{"ClearLayout", func(ev *pipeline.Event) { ev.ClearLayout() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"a":1,"bb":"x"}`)
			ev := &pipeline.Event{Body: body}
			l, _ := layouttest.Of(body)
			if !ev.SetLayout(&l) || ev.Layout() != &l {
				t.Fatal("layout not taken")
			}
			tt.change(ev)
			if ev.Layout() != nil {
				t.Fatalf("layout kept after %s: body %s", tt.name, ev.Body)
			}
		})
	}
}

// FuzzLayoutStale edits a body with a layout every way a step can and
// holds Layout() to nil or the layout of the body as it is now: a stale
// layout is never returned.
func FuzzLayoutStale(f *testing.F) {
	f.Add([]byte(`{"a":1,"bb":"x","c":{"d":[1,2]}}`), []byte{0, 1, 2, 3, 4, 5, 6})
	f.Add([]byte(` {"a" : "é", "a":2 } `), []byte{1, 1, 6, 0})
	f.Add([]byte(`{}`), []byte{2, 5, 3})
	f.Fuzz(func(t *testing.T, body []byte, ops []byte) {
		l, ok := layouttest.Of(body)
		if !ok {
			return
		}
		ev := &pipeline.Event{Payload: body, Body: body}
		if !ev.SetLayout(&l) {
			t.Fatalf("SetLayout refused the reference layout of %q", body)
		}
		for i, op := range ops {
			switch op % 7 {
			case 0:
				_ = ev.Set("a", string(ops[i:]))
			case 1:
				_ = ev.SetRaw("bb", []byte(`{"n":1}`))
			case 2:
				_ = ev.Delete("a")
			case 3: // the same bytes in a new slice
				ev.Body = bytes.Clone(ev.Body)
			case 4: // a new body of the same length over the same bytes: only with ClearLayout
				if n := len(ev.Body); n > 2 && !bytes.Equal(ev.Body, ev.Payload) {
					copy(ev.Body, bytes.Repeat([]byte(" "), n))
					ev.Body[0], ev.Body[n-1] = '{', '}'
					ev.ClearLayout()
				}
			case 5: // a later step records the new body's layout
				if nl, ok := layouttest.Of(ev.Body); ok {
					ev.SetLayout(&nl)
				}
			case 6:
				ev.Body = ev.Body[:len(ev.Body):len(ev.Body)]
			}
			got := ev.Layout()
			if got == nil {
				continue
			}
			want, ok := layouttest.Of(ev.Body)
			if !ok || !layouttest.Equal(got, &want) {
				t.Fatalf("after op %d: stale layout %+v for body %q (want %+v)", op%7, got, ev.Body, want)
			}
		}
		if !bytes.Equal(ev.Payload, body) {
			t.Fatalf("payload changed: %q", ev.Payload)
		}
	})
}
