package decode

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/layouttest"
	"github.com/sluicehq/sluice/pipeline"
)

// checkLayout decodes payload alone and holds the body's layout to the
// reference: present for every object with at most MaxLayoutMembers
// members, and equal to gjson's offsets.
func checkLayout(t *testing.T, d *JSON, payload []byte) {
	t.Helper()
	ev := &pipeline.Event{ID: "e", Payload: payload}
	out, err := d.Apply(context.Background(), []*pipeline.Event{ev})
	if err != nil || len(out) != 1 {
		if ev.Layout() != nil {
			t.Fatalf("failed event (%v) has a layout: %q", err, payload)
		}
		return
	}
	want, ok := layouttest.Of(ev.Body)
	if !ok {
		t.Fatalf("decoded body %q is no JSON object", ev.Body)
	}
	got := ev.Layout()
	if got == nil {
		if len(want.Members) <= pipeline.MaxLayoutMembers {
			t.Fatalf("no layout for %q", payload)
		}
		return
	}
	if !layouttest.Equal(got, &want) {
		t.Fatalf("layout of %q\n got %+v\nwant %+v", payload, got, want)
	}
}

func TestDecodeLayout(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		return b.String() + "}"
	}
	d := newJSON(t, Config{Format: "json", ID: "id", Time: "time"})
	for _, p := range []string{
		`{}`, ` { } `, `{"id":"a"}`, "\t{ \"id\" : \"a\" ,\n \"n\" : -1.5e3 , \"o\":{\"id\":\"inner\"} }\r\n",
		`{"a":[1,{"b":"}"}],"c":"\"","d":true,"e":null,"f":false}`, `{"\u0069d":"esc","x":{}}`,
		`{"id":"1","id":"2"}`, `[{"a":1}]`, `"s"`, `{"a":1`, `{"a":1}}`, `{"time":"2026-12-03T00:00:00Z","a":[]}`,
		many(pipeline.MaxLayoutMembers), many(pipeline.MaxLayoutMembers + 1),
	} {
		t.Run(p[:min(len(p), 20)], func(t *testing.T) { checkLayout(t, d, []byte(p)) })
	}
	// Two events of one batch: each has its own layout.
	a, b := &pipeline.Event{Payload: []byte(`{"a":1}`)}, &pipeline.Event{Payload: []byte(`{"bb":2,"c":3}`)}
	if _, err := d.Apply(context.Background(), []*pipeline.Event{a, b}); err != nil {
		t.Fatal(err)
	}
	if la, lb := a.Layout(), b.Layout(); la == nil || lb == nil || len(la.Members) != 1 || len(lb.Members) != 2 {
		t.Fatalf("layouts %+v %+v", la, lb)
	}
}

func FuzzDecodeLayout(f *testing.F) {
	for _, s := range []string{`{"id":"a","n":[1,{"x":"}"}]}`, ` {"a" : 1 } `, `{}`, `[1]`, `{"a":"\u00e9\"","b":{}}`} {
		f.Add([]byte(s))
	}
	d := newJSON(f, Config{Format: "json", ID: "id"})
	f.Fuzz(func(t *testing.T, p []byte) { checkLayout(t, d, p) })
}

// A decoder told that no later step reads layouts records none (and drops
// one the event carried), and still finds id and time.
func TestDecodeWithoutLayouts(t *testing.T) {
	d := newJSON(t, Config{Format: "json", ID: "id", Time: "time"})
	d.WriteLayouts(false)
	ev := &pipeline.Event{Payload: []byte(`{"id":"a1","time":"2026-12-03T10:00:00Z","x":1}`)}
	if _, err := d.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if l := ev.Layout(); l != nil {
		t.Fatalf("layout %+v recorded although no step reads it", l)
	}
	if ev.ID != "a1" || ev.Time.IsZero() {
		t.Fatalf("id %q time %v, want a1 and the time", ev.ID, ev.Time)
	}
	d.WriteLayouts(true)
	if _, err := d.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if l := ev.Layout(); l == nil || len(l.Members) != 3 {
		t.Fatalf("layout %+v after WriteLayouts(true), want 3 members", l)
	}
}
