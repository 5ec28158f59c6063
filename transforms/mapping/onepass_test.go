package mapping

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/layouttest"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// onePassConfigs are steps the one-pass editor takes (every path a plain
// top-level key), covering set over present and absent keys, renames onto
// and from set keys, a rename to itself, and deletes of set keys.
var onePassConfigs = []Config{
	{Set: map[string]string{"email": `lower(email)`, "email_domain": `split(lower(email), "@")[1]`, "processed_at": `now()`}},
	{Set: map[string]string{"a": `b`, "n": `x * 2`, "s": `"lit"`, "o": `{"k": [1, 2.5, nil]}`, "t": `true`}},
	{Set: map[string]string{"a": `upper(trim(a))`}, Rename: map[string]string{"a": "z", "b": "a", "c": "c"}, Delete: []string{"z", "d"}},
	{Set: map[string]string{"x": `"new"`}, Rename: map[string]string{"x": "y"}, Delete: []string{"y", "a"}},
	{Rename: map[string]string{"a": "b", "b": "c"}},
	{Delete: []string{"a", "b", "missing"}},
}

// sequential is the reference: the same edits applied one by one with sjson.
func sequential(t *testing.T, m *Map, ev *pipeline.Event) error {
	t.Helper()
	w := m.pool.Get().(*work)
	defer m.pool.Put(w)
	w.scratch.Now = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	w.nowJSON = w.nowJSON[:0]
	if err := m.eval(ev, w); err != nil {
		return err
	}
	return m.applyEach(ev, w)
}

func onePass(t *testing.T, m *Map, ev *pipeline.Event) (bool, error) {
	t.Helper()
	w := m.pool.Get().(*work)
	defer m.pool.Put(w)
	w.scratch.Now = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	w.nowJSON, w.arena = w.nowJSON[:0], nil
	walked, objStart, objEnd := m.walk(ev, w)
	w.walked, w.body = walked, ev.Body
	err := m.eval(ev, w)
	w.walked, w.body = false, nil
	if err != nil || !walked {
		return walked, err
	}
	m.applyOnePass(ev, w, objStart, objEnd)
	return true, nil
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return buf.String()
}

// FuzzOnePass holds the one-pass editor to sjson applied edit by edit:
// the same body (up to whitespace between members) and the same failures.
func FuzzOnePass(f *testing.F) {
	for _, s := range []string{
		`{"email":"Ada.L@Example.COM","a":" q ","b":1,"c":[1,{"x":"}"}],"d":null,"x":3}`,
		`{}`, ` { } `, `{"a":"x"}`, `{"a":1,"a":2}`, `{"\u0061":"esc","b":"\"q\""}`, `{"email":"noat"}`,
		`{ "a" : "sp" , "b" : { "c" : [ ] } }`, `{"b":"ü","x":1e400}`, `{"email":1}`, `[1]`, `"s"`,
	} {
		f.Add([]byte(s))
	}
	var maps []*Map
	for _, c := range onePassConfigs {
		m, err := New(pipelinetest.BuildContext(), c)
		if err != nil {
			f.Fatal(err)
		}
		if !m.onePass {
			f.Fatalf("config %+v does not take the one-pass editor", c)
		}
		maps = append(maps, m)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) || gjson.ValidBytes(body) != json.Valid(body) {
			return
		}
		for i, m := range maps {
			seq := &pipeline.Event{ID: "e", Body: bytes.Clone(body)}
			seqErr := sequential(t, m, seq)
			one := &pipeline.Event{ID: "e", Body: bytes.Clone(body)}
			took, oneErr := onePass(t, m, one)
			if !took {
				continue // the general path runs: identical by construction
			}
			if (seqErr == nil) != (oneErr == nil) {
				t.Fatalf("config %d on %q: sequential err %v, one-pass err %v", i, body, seqErr, oneErr)
			}
			if seqErr != nil {
				continue
			}
			if got, want := compact(t, one.Body), compact(t, seq.Body); got != want {
				t.Fatalf("config %d on %q:\none-pass   %s\nsequential %s", i, body, got, want)
			}
			// The same from the layout a decode step records.
			laid := &pipeline.Event{ID: "e", Body: bytes.Clone(body)}
			if l, ok := layouttest.Of(laid.Body); ok && laid.SetLayout(&l) {
				if took, err := onePass(t, m, laid); !took || err != nil {
					t.Fatalf("config %d on %q with its layout: took %v, err %v", i, body, took, err)
				}
				if got, want := compact(t, laid.Body), compact(t, seq.Body); got != want {
					t.Fatalf("config %d on %q with its layout:\none-pass   %s\nsequential %s", i, body, got, want)
				}
			}
		}
	})
}

func TestMapOnePassWorkload(t *testing.T) {
	m, err := New(pipelinetest.BuildContext(), onePassConfigs[0])
	if err != nil {
		t.Fatal(err)
	}
	payloads := []string{
		`{"id":"1","email":"Ada.Lovelace@Example.COM","n":1}`,
		`{"id":"2","email":"grace@navy.mil","email_domain":"old"}`,
	}
	var in []*pipeline.Event
	for _, p := range payloads {
		in = append(in, &pipeline.Event{ID: "x", Payload: []byte(p), Body: []byte(p)})
		in[len(in)-1].Body = in[len(in)-1].Payload
	}
	out, err := m.Apply(context.Background(), in)
	if err != nil || len(out) != 2 {
		t.Fatalf("Apply: %v", err)
	}
	want := []string{
		`{"id":"1","email":"ada.lovelace@example.com","n":1,"email_domain":"example.com","processed_at":%s}`,
		`{"id":"2","email":"grace@navy.mil","email_domain":"navy.mil","processed_at":%s}`,
	}
	at := gjson.GetBytes(out[0].Body, "processed_at").Raw
	if _, err := time.Parse(`"`+time.RFC3339Nano+`"`, at); err != nil {
		t.Fatalf("processed_at %s is not an RFC 3339 time: %v", at, err)
	}
	for i, ev := range out {
		if got := string(ev.Body); got != strings.Replace(want[i], "%s", at, 1) {
			t.Errorf("event %d body\n got %s\nwant %s", i, got, strings.Replace(want[i], "%s", at, 1))
		}
		if string(ev.Payload) != payloads[i] {
			t.Errorf("event %d payload changed: %s", i, ev.Payload)
		}
	}
	// Bodies of one batch share an arena: each must be capped, so that a
	// later edit that grows one cannot write over the next.
	if cap(out[0].Body) != len(out[0].Body) {
		t.Errorf("body cap %d != len %d", cap(out[0].Body), len(out[0].Body))
	}
	if err := out[0].Set("grow", strings.Repeat("x", 100)); err != nil {
		t.Fatal(err)
	}
	if got := gjson.GetBytes(out[1].Body, "id").String(); got != "2" {
		t.Errorf("growing event 0 changed event 1: %s", out[1].Body)
	}
}

// TestSkipValueEveryLane puts quotes, escapes and brackets at every offset
// of long values, so the eight-bytes-at-a-time skips see them in every
// lane, and checks each value's end against gjson.
func TestSkipValueEveryLane(t *testing.T) {
	for _, piece := range []string{`"`, `\"`, `\\`, `[`, `]`, `{`, `}`, `Y`, `_`, `y`, "\x7f", `é`} {
		for pos := 0; pos < 20; pos++ {
			pad := strings.Repeat("a", pos)
			for _, v := range []string{
				`"` + pad + strings.NewReplacer(`"`, `\"`, `\"`, `\\\"`).Replace(piece) + `zzzzzzzzzz"`,
				`{"k` + pad + `":"` + strings.ReplaceAll(piece, `"`, `\"`) + `","q":[1,{"r":"]}"}],"w":"` + pad + `"}`,
				`[` + pad + `"` + strings.ReplaceAll(piece, `"`, `\"`) + `",[[]],{}]`,
			} {
				body := `{"v":` + v + `,"after":1}`
				if !json.Valid([]byte(body)) {
					continue
				}
				start := strings.Index(body, ":") + 1
				want := gjson.Get(body, "v").Raw
				if end := skipValue([]byte(body), start); end < 0 || body[start:end] != want {
					t.Errorf("skipValue in %s: got end %d, want value %s", body, end, want)
				}
			}
		}
	}
}

func TestKeyEndBefore(t *testing.T) {
	tests := []struct {
		body       string
		key, value int
		want       int
	}{
		{`{"a":1}`, 1, 5, 4},
		{`{"a" : 1}`, 1, 7, 4},
		{"{\"a\"\t:\n1}", 1, 6, 4},
		{`{"":1}`, 1, 4, 3},
		{`{"a\"":1}`, 1, 7, 6},
		{`{"a",1}`, 1, 5, -1}, // no colon
		{`{"a:1}`, 1, 4, -1},  // the colon right after the opening quote
		{`{ :1}`, 1, 3, -1},   // no key before the colon
	}
	for _, tt := range tests {
		if got := keyEndBefore([]byte(tt.body), tt.key, tt.value); got != tt.want {
			t.Errorf("keyEndBefore(%q, %d, %d) = %d, want %d", tt.body, tt.key, tt.value, got, tt.want)
		}
	}
}
