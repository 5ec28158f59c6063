package pipeline_test

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

func TestEventGet(t *testing.T) {
	ev := &pipeline.Event{ID: "e", Body: []byte(`{"data":{"email":"a@b.c","tags":["x","y"],"n":3},"ok":true,"nothing":null}`)}
	tests := []struct {
		path   string
		exists bool
		raw    string
	}{
		{"data.email", true, `"a@b.c"`},
		{"data.tags.1", true, `"y"`},
		{"data.n", true, `3`},
		{"ok", true, `true`},
		{"nothing", true, `null`},
		{"data.missing", false, ``},
		{"data.tags.5", false, ``},
		{"missing.deeper", false, ``},
	}
	for _, tt := range tests {
		got := ev.Get(tt.path)
		if got.Exists() != tt.exists || got.Raw != tt.raw {
			t.Errorf("Get(%q) = exists %v raw %q, want %v %q", tt.path, got.Exists(), got.Raw, tt.exists, tt.raw)
		}
	}
	// Nothing decoded yet: nothing exists, even with a payload.
	raw := &pipeline.Event{ID: "r", Payload: []byte(`{"data":{"email":"a@b.c"}}`)}
	if raw.Get("data.email").Exists() {
		t.Error("Get found a field on an event without a body")
	}
}

func TestEventSetWithoutBody(t *testing.T) {
	ev := &pipeline.Event{ID: "evt_1", Payload: []byte(`{"a":1}`)}
	for name, err := range map[string]error{
		"Set":    ev.Set("a", 2),
		"SetRaw": ev.SetRaw("a", []byte(`2`)),
	} {
		if err == nil || !strings.Contains(err.Error(), "no decoded body") || !strings.Contains(err.Error(), "evt_1") {
			t.Errorf("%s without a body = %v, want an error naming the event", name, err)
		}
	}
	if err := ev.Delete("a"); err != nil {
		t.Errorf("Delete without a body = %v, want nil", err)
	}
	if ev.Body != nil || string(ev.Payload) != `{"a":1}` {
		t.Errorf("event changed: body %q payload %q", ev.Body, ev.Payload)
	}
}

func TestEventSetDeleteSetRaw(t *testing.T) {
	tests := []struct {
		name string
		body string
		edit func(*pipeline.Event) error
		want string
	}{
		{"set existing", `{"a":1}`, func(e *pipeline.Event) error { return e.Set("a", 2) }, `{"a":2}`},
		{"set string", `{"a":1}`, func(e *pipeline.Event) error { return e.Set("s", `x"y`) }, `{"a":1,"s":"x\"y"}`},
		{"set creates objects", `{}`, func(e *pipeline.Event) error { return e.Set("x.y.z", true) }, `{"x":{"y":{"z":true}}}`},
		{"set array element", `{"t":["a","b"]}`, func(e *pipeline.Event) error { return e.Set("t.1", "c") }, `{"t":["a","c"]}`},
		{"set appends to array", `{"t":["a"]}`, func(e *pipeline.Event) error { return e.Set("t.-1", "b") }, `{"t":["a","b"]}`},
		{"set struct value", `{}`, func(e *pipeline.Event) error {
			return e.Set("v", struct {
				N int `json:"n"`
			}{4})
		}, `{"v":{"n":4}}`},
		{"set raw", `{"a":1}`, func(e *pipeline.Event) error { return e.SetRaw("a", []byte(`[1,{"b":2}]`)) }, `{"a":[1,{"b":2}]}`},
		{"delete", `{"a":1,"b":2}`, func(e *pipeline.Event) error { return e.Delete("a") }, `{"b":2}`},
		{"delete nested", `{"a":{"b":1,"c":2}}`, func(e *pipeline.Event) error { return e.Delete("a.b") }, `{"a":{"c":2}}`},
		{"delete missing", `{"a":1}`, func(e *pipeline.Event) error { return e.Delete("zzz") }, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &pipeline.Event{ID: "e", Body: []byte(tt.body)}
			if err := tt.edit(ev); err != nil {
				t.Fatal(err)
			}
			if string(ev.Body) != tt.want {
				t.Errorf("body = %s, want %s", ev.Body, tt.want)
			}
			if !gjson.ValidBytes(ev.Body) {
				t.Errorf("body is not valid JSON: %s", ev.Body)
			}
		})
	}
}

func TestEventSetErrors(t *testing.T) {
	ev := &pipeline.Event{ID: "e", Body: []byte(`{"a":1}`)}
	if err := ev.Set("a", func() {}); err == nil {
		t.Error("Set of an unmarshalable value succeeded")
	}
	if string(ev.Body) != `{"a":1}` {
		t.Errorf("failed Set changed the body to %s", ev.Body)
	}
}

// Decode steps share the payload as the body; no edit may write through.
func TestEditsNeverWriteThroughToPayload(t *testing.T) {
	const payload = `{"email":"ADA@EXAMPLE.COM","n":10,"tags":["a","b"],"keep":"x"}`
	edits := []struct {
		name string
		edit func(*pipeline.Event) error
	}{
		{"same-length Set", func(e *pipeline.Event) error { return e.Set("email", "ada@example.com") }},
		{"shorter Set", func(e *pipeline.Event) error { return e.Set("n", 1) }},
		{"longer Set", func(e *pipeline.Event) error { return e.Set("keep", strings.Repeat("y", 100)) }},
		{"new field", func(e *pipeline.Event) error { return e.Set("added", 1) }},
		{"same-length SetRaw", func(e *pipeline.Event) error { return e.SetRaw("n", []byte(`11`)) }},
		{"Delete", func(e *pipeline.Event) error { return e.Delete("tags") }},
		{"Delete array element", func(e *pipeline.Event) error { return e.Delete("tags.0") }},
	}
	for _, spare := range []int{0, 256} {
		for _, tt := range edits {
			t.Run(tt.name, func(t *testing.T) {
				// With spare capacity, an append-in-place would land in
				// the payload's backing array.
				p := make([]byte, len(payload), len(payload)+spare)
				copy(p, payload)
				ev := &pipeline.Event{ID: "e", Payload: p, Body: p}
				if err := tt.edit(ev); err != nil {
					t.Fatal(err)
				}
				if string(ev.Payload) != payload {
					t.Fatalf("payload changed to %s", ev.Payload)
				}
				if spare > 0 && string(p[:cap(p)][len(payload):]) != string(make([]byte, spare)) {
					t.Fatal("an edit wrote into the payload's spare capacity")
				}
				if string(ev.Body) == payload {
					t.Fatalf("body did not change")
				}
				// A second edit on the now-owned body keeps the payload too.
				if err := ev.Set("second", true); err != nil {
					t.Fatal(err)
				}
				if string(ev.Payload) != payload || !ev.Get("second").Bool() {
					t.Fatalf("second edit: payload %s body %s", ev.Payload, ev.Body)
				}
			})
		}
	}
}

func TestEventSize(t *testing.T) {
	p := []byte(`{"a":1}`)
	shared := &pipeline.Event{ID: "id", Key: []byte("key"), Payload: p, Body: p}
	if got, want := shared.Size(), len(p)+3+2; got != want {
		t.Errorf("shared body Size = %d, want %d (counted once)", got, want)
	}
	if err := shared.Set("b", 2); err != nil {
		t.Fatal(err)
	}
	if got, want := shared.Size(), len(p)+3+2+len(shared.Body); got != want {
		t.Errorf("owned body Size = %d, want %d", got, want)
	}
}

func TestMeta(t *testing.T) {
	var m pipeline.Meta
	if _, ok := m.Get("topic"); ok {
		t.Error("empty meta has topic")
	}
	m.Set("topic", "crm")
	m.Set("partition", "3")
	m.Set("topic", "ats") // replaces in place
	m.Set("", "empty key")
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"topic", "ats", true},
		{"partition", "3", true},
		{"", "empty key", true},
		{"offset", "", false},
		{"Topic", "", false},
	}
	for _, tt := range tests {
		if got, ok := m.Get(tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
	if len(m) != 3 || m[0].Key != "topic" || m[1].Key != "partition" {
		t.Errorf("meta order or length wrong: %+v", m)
	}
	// An empty value is present, not missing.
	m.Set("offset", "")
	if v, ok := m.Get("offset"); !ok || v != "" {
		t.Errorf("Get(offset) = %q, %v", v, ok)
	}
}
