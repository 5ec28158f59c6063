package mongodb

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// referenceDoc is the general path: JSON → bson.D → bson.Marshal.
func referenceDoc(id string, body []byte) ([]byte, error) {
	r, _ := plainObject(body)
	return bson.Marshal(fullDoc(id, jsonDoc(r)))
}

func TestAppendFullDocMatchesMarshal(t *testing.T) {
	for _, body := range []string{
		`{}`,
		`{"a":1}`,
		`{"_id":"theirs","a":"x"}`,
		`{"n":2147483647,"m":2147483648,"neg":-2147483649,"f":1.5,"e":1e3,"big":123456789012345678901234567890}`,
		`{"t":true,"f":false,"z":null,"s":"é\u0000\"\\\n"}`,
		`{"nested":{"a":[1,"two",{"three":[3]},[],{}],"b":{"c":{"d":null}}}}`,
		`{"dup":1,"dup":2}`,
		`{"esc\"aped key":1,"uni\u00e9":"v"}`,
		`{"data":{"Id":"003Hu00001","Email":"ada@acme-corp.com","Tags":["a","b"]},"occurred_at":"2026-11-18T14:03:11Z"}`,
	} {
		if _, ok := plainObject([]byte(body)); !ok {
			t.Fatalf("%s: not a plain object", body)
		}
		want, err := referenceDoc("evt_1", []byte(body))
		if err != nil {
			t.Fatalf("%s: reference: %v", body, err)
		}
		r, _ := viewPlainObject([]byte(body)) // the view build() uses
		got, err := appendFullDoc(nil, "evt_1", r)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", body, bson.Raw(got), bson.Raw(want))
		}
	}
}

func TestAppendFullDocRefusesNULKeys(t *testing.T) {
	r, _ := plainObject([]byte(`{"a":{"b\u0000c":1}}`))
	if _, err := appendFullDoc(nil, "x", r); err == nil {
		t.Fatal("a field name with a NUL byte was encoded")
	}
}

// FuzzAppendFullDoc: for every plain JSON object, the direct encoder
// writes the same bytes as the bson.D path, and fails where it fails.
func FuzzAppendFullDoc(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5,"x",{"b":null}]}`, `{"_id":1,"k":true}`, `{"n":-9223372036854775808}`, `{"a\u0000":1}`, `{"deep":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, ok := viewPlainObject(body)
		if _, okCopy := plainObject(body); ok != okCopy {
			t.Fatalf("%q: the view and the copy disagree on whether it is a plain object", body)
		}
		if !ok {
			return
		}
		want, werr := referenceDoc("id", body)
		got, gerr := appendFullDoc(nil, "id", r)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: reference error %v, direct error %v", body, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", body, bson.Raw(got), bson.Raw(want))
		}
	})
}

// TestAppendFullDocJSON: the one-pass encoder takes plain objects (escaped
// strings and all) and writes appendFullDoc's bytes; it declines what the
// gjson path must decide (invalid JSON, a NUL in a field name) and never
// takes a body that path refuses.
func TestAppendFullDocJSON(t *testing.T) {
	tests := []struct {
		body string
		take bool
	}{
		{`{}`, true},
		{` { "a" : 1 , "b" : [ 1 , { } , [ ] ] } `, true},
		{`{"_id":"theirs","a":"x","_id":{"x":1}}`, true},
		{`{"n":2147483647,"m":2147483648,"neg":-2147483649,"f":1.5,"e":1e3,"E":-2E-2,"z":-0,"big":123456789012345678901234567890,"inf":1e999}`, true},
		{`{"t":true,"f":false,"z":null,"s":"é\u0000\"\\\n\/\ud83d\ude00\ud800"}`, true},
		{`{"esc\"aped key":1,"uni\u00e9":"v"}`, true},
		{`{"dup":1,"dup":2}`, true},
		{"{\"raw\":\"\xff\xfe\"}", true}, // invalid UTF-8 passes through, as gjson leaves it
		{`{"a\u0000":1}`, false},
		{`{"a":01}`, false},
		{`{"a":1,}`, false},
		{`{"a":[1,]}`, false},
		{`{"a":tru}`, false},
		{`{"a":"x`, false},
		{`{"a":"\x"}`, false},
		{`{"a":1} x`, false},
		{`[1]`, false},
		{`{"a":-}`, false},
		{`{"a":1.}`, false},
		{`{"a":1e}`, false},
	}
	for _, tt := range tests {
		got, ok := appendFullDocJSON(nil, "evt_1", []byte(tt.body))
		if ok != tt.take {
			t.Errorf("%s: taken %v, want %v", tt.body, ok, tt.take)
			continue
		}
		if !ok {
			continue
		}
		r, plain := viewPlainObject([]byte(tt.body))
		if !plain {
			t.Fatalf("%s: taken, but not a plain object for the gjson path", tt.body)
		}
		want, err := appendFullDoc(nil, "evt_1", r)
		if err != nil {
			t.Fatalf("%s: taken, but the gjson path fails: %v", tt.body, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.body, bson.Raw(got), bson.Raw(want))
		}
	}
}

// FuzzAppendFullDocJSON: whatever body the one-pass encoder takes, the
// gjson path takes too and encodes to the same bytes.
func FuzzAppendFullDocJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5,"x",{"b":null}]}`, `{"_id":1,"k":true}`, `{"n":-9223372036854775808}`, `{"s":"\u00e9\ud83d\ude00\"\\"}`, `{"a\u0000":1}`, ` {"a" : [ ] } `, `{"n":1e400,"m":-0.0e-0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if pipeline.CheckJSONDepth(body, 0) != nil || bytes.Contains(body, []byte(`"$`)) {
			return // what build rules out before it
		}
		got, ok := appendFullDocJSON(nil, "id", body)
		if !ok {
			return
		}
		r, plain := viewPlainObject(body)
		if !plain {
			t.Fatalf("%q: taken, but the gjson path refuses it", body)
		}
		want, err := appendFullDoc(nil, "id", r)
		if err != nil {
			t.Fatalf("%q: taken, but the gjson path fails: %v", body, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", body, bson.Raw(got), bson.Raw(want))
		}
	})
}
