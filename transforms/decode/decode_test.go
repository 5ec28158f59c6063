package decode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

func events(payloads ...string) []*pipeline.Event {
	out := make([]*pipeline.Event, len(payloads))
	for i, p := range payloads {
		out[i] = &pipeline.Event{ID: "src-" + string(rune('a'+i)), Payload: []byte(p)}
	}
	return out
}

func ids(evs []*pipeline.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func sameBacking(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

func TestApplyValidObjectsShareBody(t *testing.T) {
	in := events(`{"a":1}`, `  {"b":[1,2,{"c":null}]}`, "\n\t{}\r\n", `{"s":"x\"y"}`)
	orig := append([]*pipeline.Event(nil), in...)
	out, err := newJSON(t, Config{Format: "json"}).Apply(context.Background(), in)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(out) != len(orig) {
		t.Fatalf("got %d events, want %d", len(out), len(orig))
	}
	for i, ev := range out {
		if ev != orig[i] {
			t.Errorf("out[%d] is not the input event %d", i, i)
		}
		if !bytes.Equal(ev.Body, ev.Payload) {
			t.Errorf("out[%d].Body = %q, want the payload %q", i, ev.Body, ev.Payload)
		}
		if !sameBacking(ev.Body, ev.Payload) {
			t.Errorf("out[%d].Body does not share the payload's memory", i)
		}
		if ev.ID != orig[i].ID {
			t.Errorf("out[%d].ID changed to %q without an id option", i, ev.ID)
		}
	}
}

func TestApplyFailsMalformedPayloadsPermanently(t *testing.T) {
	tests := []struct {
		name      string
		payloads  []string
		failed    []int
		survivors []string // IDs, in order
		notObject []int    // failed indexes whose reason is ErrNotObject
	}{
		{
			name:      "invalid JSON in the middle",
			payloads:  []string{`{"a":1}`, `{"a":`, `{"b":2}`},
			failed:    []int{1},
			survivors: []string{"src-a", "src-c"},
		},
		{
			name:      "first and last fail",
			payloads:  []string{`not json`, `{"ok":true}`, `{"ok":true}`, `{"a":1}}`},
			failed:    []int{0, 3},
			survivors: []string{"src-b", "src-c"},
		},
		{
			name:      "array string number",
			payloads:  []string{`[1,2]`, `{"x":1}`, `"str"`, `12.5`, `{"y":2}`, `true`, `null`},
			failed:    []int{0, 2, 3, 5, 6},
			survivors: []string{"src-b", "src-e"},
			notObject: []int{0, 2, 3, 5, 6},
		},
		{
			name:      "empty and blank payloads",
			payloads:  []string{``, `{}`, "   \n"},
			failed:    []int{0, 2},
			survivors: []string{"src-b"},
		},
		{
			name:     "all fail",
			payloads: []string{`{`, `}`},
			failed:   []int{0, 1},
		},
		{
			name:      "trailing garbage after object",
			payloads:  []string{`{"a":1} x`, `{"a":1}`},
			failed:    []int{0},
			survivors: []string{"src-b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := events(tt.payloads...)
			out, err := newJSON(t, Config{Format: "json"}).Apply(context.Background(), in)
			var be *pipeline.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("err = %v (%T), want a *pipeline.BatchError", err, err)
			}
			if len(be.Failures) != len(tt.failed) {
				t.Fatalf("%d failures (%v), want indexes %v", len(be.Failures), be, tt.failed)
			}
			for i, f := range be.Failures {
				if f.Index != tt.failed[i] {
					t.Errorf("failure %d at index %d, want %d", i, f.Index, tt.failed[i])
				}
				if !pipeline.IsPermanent(f.Err) {
					t.Errorf("failure at index %d is not permanent: %v", f.Index, f.Err)
				}
				if in[f.Index].Body != nil {
					t.Errorf("failed event %d got a body %q", f.Index, in[f.Index].Body)
				}
			}
			for _, idx := range tt.notObject {
				found := false
				for _, f := range be.Failures {
					if f.Index == idx {
						found = true
						if !errors.Is(f.Err, ErrNotObject) {
							t.Errorf("failure at %d is %v, want ErrNotObject", idx, f.Err)
						}
					}
				}
				if !found {
					t.Errorf("index %d did not fail", idx)
				}
			}
			if got := ids(out); strings.Join(got, ",") != strings.Join(tt.survivors, ",") {
				t.Errorf("survivors = %v, want %v", got, tt.survivors)
			}
			for _, ev := range out {
				if !sameBacking(ev.Body, ev.Payload) {
					t.Errorf("survivor %s has body %q not sharing its payload", ev.ID, ev.Body)
				}
			}
		})
	}
}

func TestApplyDoesNotReorderInputOnFailure(t *testing.T) {
	// The returned slice must not alias the input slice in a way that
	// overwrites it: the runner still indexes failures against in.
	in := events(`{"a":1}`, `bad`, `{"c":3}`, `{"d":4}`)
	snapshot := append([]*pipeline.Event(nil), in...)
	out, err := newJSON(t, Config{Format: "json"}).Apply(context.Background(), in)
	if err == nil {
		t.Fatal("want a batch error")
	}
	for i := range in {
		if in[i] != snapshot[i] {
			t.Errorf("input slot %d was overwritten", i)
		}
	}
	if got := strings.Join(ids(out), ","); got != "src-a,src-c,src-d" {
		t.Errorf("out = %s", got)
	}
}

func TestApplyIDAndTime(t *testing.T) {
	source := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		cfg      Config
		payload  string
		wantID   string
		wantTime time.Time
		wantFail bool
	}{
		{name: "id string", cfg: Config{ID: "id"}, payload: `{"id":"evt_1"}`, wantID: "evt_1", wantTime: source},
		{name: "id nested", cfg: Config{ID: "meta.id"}, payload: `{"meta":{"id":"n-1"}}`, wantID: "n-1", wantTime: source},
		{name: "id number", cfg: Config{ID: "id"}, payload: `{"id":4000123}`, wantID: "4000123", wantTime: source},
		{name: "id missing keeps source id", cfg: Config{ID: "id"}, payload: `{"x":1}`, wantID: "src-a", wantTime: source},
		{name: "id null keeps source id", cfg: Config{ID: "id"}, payload: `{"id":null}`, wantID: "src-a", wantTime: source},
		{name: "id empty keeps source id", cfg: Config{ID: "id"}, payload: `{"id":""}`, wantID: "src-a", wantTime: source},
		{
			name: "time RFC3339", cfg: Config{Time: "ts"}, payload: `{"ts":"2024-03-01T09:30:00Z"}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
		},
		{
			name: "time RFC3339 nano with offset", cfg: Config{Time: "ts"}, payload: `{"ts":"2024-03-01T11:30:00.123456789+02:00"}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 123456789, time.UTC),
		},
		{
			name: "time unix seconds", cfg: Config{Time: "ts"}, payload: `{"ts":1709285400}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
		},
		{
			name: "time unix seconds fractional", cfg: Config{Time: "ts"}, payload: `{"ts":1709285400.5}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 500_000_000, time.UTC),
		},
		{
			name: "time unix millis", cfg: Config{Time: "ts"}, payload: `{"ts":1709285400123}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 123_000_000, time.UTC),
		},
		{name: "time missing keeps source time", cfg: Config{Time: "ts"}, payload: `{"x":1}`, wantID: "src-a", wantTime: source},
		{name: "time garbage string keeps source time", cfg: Config{Time: "ts"}, payload: `{"ts":"yesterday"}`, wantID: "src-a", wantTime: source},
		{name: "time bool keeps source time", cfg: Config{Time: "ts"}, payload: `{"ts":true}`, wantID: "src-a", wantTime: source},
		{name: "time object keeps source time", cfg: Config{Time: "ts"}, payload: `{"ts":{"s":1}}`, wantID: "src-a", wantTime: source},
		{name: "require_time missing fails", cfg: Config{Time: "ts", RequireTime: true}, payload: `{"x":1}`, wantFail: true},
		{name: "require_time garbage fails", cfg: Config{Time: "ts", RequireTime: true}, payload: `{"ts":"03/01/2024"}`, wantFail: true},
		{name: "require_time null fails", cfg: Config{Time: "ts", RequireTime: true}, payload: `{"ts":null}`, wantFail: true},
		{
			name: "require_time present passes", cfg: Config{Time: "ts", RequireTime: true}, payload: `{"ts":"2024-03-01T09:30:00Z"}`,
			wantID: "src-a", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
		},
		{
			name: "id and time together", cfg: Config{ID: "data.Id", Time: "occurred_at"},
			payload: `{"occurred_at":"2024-03-01T09:30:00Z","data":{"Id":"003abc"}}`,
			wantID:  "003abc", wantTime: time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Format = "json"
			ev := &pipeline.Event{ID: "src-a", Time: source, Payload: []byte(tt.payload)}
			out, err := newJSON(t, tt.cfg).Apply(context.Background(), []*pipeline.Event{ev})
			if tt.wantFail {
				var be *pipeline.BatchError
				if !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[0].Index != 0 {
					t.Fatalf("err = %v, want one failure at index 0", err)
				}
				if !pipeline.IsPermanent(be.Failures[0].Err) {
					t.Errorf("failure is not permanent: %v", be.Failures[0].Err)
				}
				if len(out) != 0 {
					t.Errorf("failed event returned in out")
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if len(out) != 1 || out[0] != ev {
				t.Fatalf("out = %v, want the event", out)
			}
			if ev.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", ev.ID, tt.wantID)
			}
			if !ev.Time.Equal(tt.wantTime) {
				t.Errorf("Time = %v, want %v", ev.Time, tt.wantTime)
			}
		})
	}
}

func TestBodyEditDoesNotChangePayload(t *testing.T) {
	const payload = `{"email":"Ada.Lovelace@Example.com","n":1,"tags":["a"]}`
	ev := &pipeline.Event{ID: "e", Payload: []byte(payload)}
	if _, err := newJSON(t, Config{Format: "json"}).Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if !sameBacking(ev.Body, ev.Payload) {
		t.Fatal("precondition: decode should share the payload as the body")
	}
	// A same-length replacement is the case sjson's in-place mode would
	// write straight into the shared bytes.
	edits := []struct {
		path  string
		value any
	}{
		{"email", "ada.lovelace@example.com"},
		{"n", 2},
		{"tags.0", "b"},
		{"added.deep", true},
	}
	for _, e := range edits {
		if err := ev.Set(e.path, e.value); err != nil {
			t.Fatalf("Set(%q): %v", e.path, err)
		}
		if string(ev.Payload) != payload {
			t.Fatalf("after Set(%q) the payload changed to %s", e.path, ev.Payload)
		}
	}
	if err := ev.Delete("n"); err != nil {
		t.Fatal(err)
	}
	if string(ev.Payload) != payload {
		t.Fatalf("after Delete the payload changed to %s", ev.Payload)
	}
	want := `{"email":"ada.lovelace@example.com","tags":["b"],"added":{"deep":true}}`
	if string(ev.Body) != want {
		t.Errorf("Body = %s, want %s", ev.Body, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{Config{Format: "json"}, ""},
		{Config{Format: "json", Time: "ts", RequireTime: true}, ""},
		{Config{Format: "avro"}, "needs avro.registry.url or avro.schema_file"},
		{Config{Format: "xml"}, "must be json"},
		{Config{Format: ""}, "must be json"},
		{Config{Format: "json", RequireTime: true}, "needs time"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tt.cfg, err)
			}
			continue
		}
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, tt.wantErr) {
			t.Errorf("Validate(%+v) = %v, want a FieldError containing %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` {"a":[1,2,{"b":null}]} `, `[]`, `"x"`, `1`, ``, `{`, `{"a":1}x`,
		`{"id":"x","ts":"2024-03-01T09:30:00Z"}`, `{"id":7,"ts":1709285400123}`, `{"ts":1e400}`,
		"\ufeff{}", `{"a":"\ud800"}`, "{\"a\":\"\x00\"}",
		// Deep nesting (issue #15): refused at max_depth, never recursed into.
		strings.Repeat("[", 100000), strings.Repeat(`{"a":`, 20000), `{"a":` + strings.Repeat("[", 511) + strings.Repeat("]", 511) + `}`,
		`{"a":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`,
	} {
		f.Add([]byte(s))
	}
	d := newJSON(f, Config{Format: "json", ID: "id", Time: "ts"})
	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := append([]byte(nil), payload...)
		ev := &pipeline.Event{ID: "src", Payload: payload}
		out, err := d.Apply(context.Background(), []*pipeline.Event{ev})
		if string(ev.Payload) != string(orig) {
			t.Fatalf("payload changed: %q -> %q", orig, ev.Payload)
		}
		if err != nil {
			var be *pipeline.BatchError
			if !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[0].Index != 0 || !pipeline.IsPermanent(be.Failures[0].Err) {
				t.Fatalf("err = %v, want one permanent failure at index 0", err)
			}
			if len(out) != 0 || ev.Body != nil {
				t.Fatalf("failed event still returned (out=%d) or got a body %q", len(out), ev.Body)
			}
			return
		}
		if len(out) != 1 || out[0] != ev {
			t.Fatalf("success but out = %v", out)
		}
		if !bytes.Equal(ev.Body, payload) {
			t.Fatalf("body %q != payload %q", ev.Body, payload)
		}
		if !json.Valid(ev.Body) {
			t.Fatalf("accepted invalid JSON %q", ev.Body)
		}
		// RawMessage values: numbers beyond float64 (1e400) are still JSON.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(ev.Body, &obj); err != nil || obj == nil {
			t.Fatalf("accepted body that is not a JSON object: %q (%v)", ev.Body, err)
		}
		if ev.ID == "" {
			t.Fatal("event lost its id")
		}
		if depth := maxNesting(ev.Body); depth > DefaultMaxDepth {
			t.Fatalf("accepted a body nested %d deep, over max_depth %d", depth, DefaultMaxDepth)
		}
	})
}

// maxNesting is the deepest nesting of objects and arrays in valid JSON.
func maxNesting(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// TestFailureReasonsCarryNoPayloadBytes: a dead letter's reason says what
// is wrong and how large the payload is, never what it holds (the payload
// itself goes to the dead-letter sink, whose reason is also logged and shown).
func TestFailureReasonsCarryNoPayloadBytes(t *testing.T) {
	secret := "jane.doe@example.com"
	for _, p := range []string{
		`{"email":"` + secret + `",`,
		`["` + secret + `"]`,
		strings.Repeat("[", 600) + `"` + secret + `"`,
	} {
		_, err := newJSON(t, Config{Format: "json", MaxDepth: 512}).Apply(context.Background(), events(p))
		var be *pipeline.BatchError
		if !errors.As(err, &be) || len(be.Failures) != 1 {
			t.Fatalf("payload of %d bytes: err = %v, want one failure", len(p), err)
		}
		if reason := be.Failures[0].Err.Error(); strings.Contains(reason, "jane") || strings.Contains(reason, `"email"`) {
			t.Errorf("reason carries payload bytes: %s", reason)
		}
	}
}
