package envelope

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// oldRead is transforms/enrich's by-position reader before Read replaced
// it (id, source, type, account_id, occurred_at, data, system_modified_at),
// kept as the reference Read must agree with.
func oldRead(body string, env *[7]gjson.Result) {
	left := 6
	gjson.Parse(body).ForEach(func(k, v gjson.Result) bool {
		i := -1
		switch k.Str {
		case "id":
			i = 0
		case "source":
			i = 1
		case "type":
			i = 2
		case "account_id":
			i = 3
		case "occurred_at":
			i = 4
		case "data":
			i = 5
		case "system_modified_at":
			if !env[6].Exists() {
				env[6] = v
			}
			return true
		}
		if i >= 0 && !env[i].Exists() {
			env[i] = v
			left--
		}
		return left > 0
	})
}

var seeds = []string{
	`{"id":"a","source":"salesforce","type":"contact.updated","account_id":"acct_1","occurred_at":"2026-11-17T09:41:05Z","system_modified_at":"2026-11-17T09:41:06Z","key":"salesforce:1","data":{"Id":"1"}}`,
	`{"data":{"x":1},"id":"late","source":"s","type":"t","account_id":null,"occurred_at":1}`,
	`{"id":"a","id":"b","source":"s","source":"t","data":[],"data":{}}`,
	`{"source":"x","data":{"a":1},"key":"after data","system_modified_at":"after"}`,
	`{"id":"\u00e9\"","key":"k","type":"t","account_id":"a","occurred_at":"o","source":"s","data":null,"system_modified_at":"late"}`,
	`[]`, `{}`, `"str"`, `{"id":`, `{"id":1,"data":"not an object"}`,
}

func fields(f *Fields) [8]gjson.Result {
	return [8]gjson.Result{f.ID(), f.Source(), f.Type(), f.AccountID(), f.OccurredAt(), f.Data(), f.SystemModifiedAt(), f.Key()}
}

func TestReadAgreesWithOldReader(t *testing.T) {
	for _, body := range seeds {
		t.Run(body, func(t *testing.T) { checkRead(t, body) })
	}
}

func checkRead(t *testing.T, body string) {
	var old [7]gjson.Result
	oldRead(body, &old)
	var f Fields
	f.r[iKey] = gjson.Result{Raw: "stale"} // Read starts from nothing
	Read(body, &f)
	got := fields(&f)
	for i := range old {
		if got[i].Raw != old[i].Raw || got[i].Type != old[i].Type || got[i].Str != old[i].Str {
			t.Fatalf("field %d of %q: got %q, old reader %q", i, body, got[i].Raw, old[i].Raw)
		}
	}
	// key, which the old reader did not read, is the first "key" of the
	// object when read at all (gjson.Get also takes the first of duplicates).
	if f.Key().Exists() && f.Key().Raw != gjson.Get(body, Key).Raw && json.Valid([]byte(body)) {
		t.Fatalf("key of %q: got %q, want %q", body, f.Key().Raw, gjson.Get(body, Key).Raw)
	}
}

// FuzzRead: on any body, Read agrees with the old by-position reader on
// every field it read, and never panics.
func FuzzRead(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(checkRead)
}

func TestAppendRoundTrip(t *testing.T) {
	cases := []Envelope{
		{ID: "a", Source: "ses", Type: "bounce", AccountID: "acct_1", OccurredAt: "2026-11-17T09:41:05Z", Key: "k", Data: json.RawMessage(`{"a":1}`)},
		{ID: `<"x">&\`, Source: "s\x00", Type: "\u2028", AccountID: "é", OccurredAt: "o", SystemModifiedAt: "sm", Key: "", Data: json.RawMessage(`[1,2]`)},
		{ID: "no data"},
	}
	for _, e := range cases {
		t.Run(e.ID, func(t *testing.T) {
			out := e.Append([]byte("prefix"))
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatalf("prefix lost: %s", out)
			}
			out = out[len("prefix"):]
			var back Envelope
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("not JSON: %v: %s", err, out)
			}
			want, _ := json.Marshal(e) // encoding/json writes the same bytes
			if !bytes.Equal(out, want) {
				t.Fatalf("Append wrote\n %s\nencoding/json\n %s", out, want)
			}
			var f Fields
			Read(string(out), &f)
			if f.ID().Str != back.ID || f.Key().Str != back.Key || f.SystemModifiedAt().Str != back.SystemModifiedAt {
				t.Fatalf("Read %+v, decoded %+v", f, back)
			}
			_, keyAt := e.AppendHead(nil)
			if out[keyAt-1] != '"' || !bytes.HasPrefix(out[keyAt-len(`"key":"`):], []byte(`"key":"`)) {
				t.Fatalf("keyAt %d does not point at the key's text in %s", keyAt, out)
			}
		})
	}
}

// BenchmarkRead compares Read with the old by-position reader on a
// poller's envelope (the transform's hot path reads one per event).
func BenchmarkRead(b *testing.B) {
	body := seeds[0]
	b.Run("Read", func(b *testing.B) {
		b.ReportAllocs()
		var f Fields
		for b.Loop() {
			Read(body, &f)
		}
	})
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env [7]gjson.Result
			oldRead(body, &env)
		}
	})
}
