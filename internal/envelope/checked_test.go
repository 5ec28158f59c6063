package envelope

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// checkReadChecked holds ReadChecked to CheckJSONDepth followed by Read:
// the same error (limit, offset, size) or none, and then the same fields,
// value for value (type, raw text, string, number and index).
func checkReadChecked(t *testing.T, body string, limit int) {
	t.Helper()
	var got, want Fields
	err := ReadChecked(body, &got, limit)
	werr := pipeline.CheckJSONDepth([]byte(body), limit)
	if werr != nil {
		var g, w *pipeline.JSONDepthError
		if !errors.As(err, &g) || !errors.As(werr, &w) || *g != *w {
			t.Fatalf("%.80q (limit %d): error %v, CheckJSONDepth says %v", body, limit, err, werr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%.80q (limit %d): error %v, CheckJSONDepth passes it", body, limit, err)
	}
	Read(body, &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%.80q (limit %d):\n got %#v\nwant %#v", body, limit, got.r, want.r)
	}
}

func TestReadChecked(t *testing.T) {
	head := `{"id":"e1","source":"hubspot","type":"contact.updated","account_id":"a1","occurred_at":"2026-11-18T14:03:11Z","key":"k1","data":`
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tt := range []struct {
		body  string
		limit int
		fast  bool // taken by the one scan (not handed to the two readers)
	}{
		{head + `{"properties":{"email":"a@b.c","n":[1,2,{"x":"y\"z"}]}}}`, 0, true},
		{" \n\t" + head + `{"a":1} }` + " \r\n", 0, true},
		{head + `{"a":` + deep(509) + `}}`, 0, true},
		{head + `{"a":` + deep(510) + `}}`, 0, true}, // 513 deep: the error, from the one scan
		{head + `{"a":` + strings.Repeat("[", 10<<10), 0, true},
		{head + `{}}` + deep(600), 0, true},                    // after the envelope: still depth-checked
		{head + `{}}` + `"x"`, 0, true},                        // every field found: Read stops before the rest
		{`{"id":"e1","data":{}}` + `,"source":"s"}`, 0, false}, // Read looks past the brace
		{`{"id":1.5e3,"source":true,"type":null,"account_id":-0,"occurred_at":false,"data":[]}`, 0, true},
		{`{"id":"a","id":"b","data":"x","source":"s","type":"t","account_id":"","occurred_at":"o","key":"late"}`, 0, true},
		{`{"system_modified_at":"m","key":"k","d\u0061ta":{}}`, 0, false}, // an escaped key
		{`{"id":"\u00e9\n","data":{"s":"(not a bracket)"}}`, 0, true},
		{`{"data":{"a":(1)}}`, 0, false},
		{`{"data":{"a":"\x"}}`, 0, false},
		{`{"data":{"a":[}}}`, 0, true}, // malformed, but counted alike by all
		{`{"id":01}`, 0, false},
		{`{"id":1 "source":2}`, 0, false},
		{`[1,2]`, 0, false},
		{``, 0, false},
		{`{}`, 1, true},
		{`{"data":{}}`, 1, true},
		{`{"data":{"a":{}}}`, 2, true},
	} {
		var f Fields
		c := checked{b: tt.body, limit: tt.limit}
		if c.limit <= 0 {
			c.limit = pipeline.DefaultMaxJSONDepth
		}
		if fast, _ := c.read(&f, nil); fast != tt.fast {
			t.Errorf("%.60q: one scan %v, want %v", tt.body, fast, tt.fast)
		}
		l := tt.limit
		if l <= 0 {
			l = pipeline.DefaultMaxJSONDepth
		}
		checkReadChecked(t, tt.body, l)
	}
}

func FuzzReadChecked(f *testing.F) {
	for _, s := range []string{
		`{"id":"e1","source":"hubspot","type":"contact.updated","account_id":"a1","occurred_at":"2026-11-18T14:03:11Z","key":"k1","data":{"properties":{"email":"a@b.c"}}}`,
		`{"id":"a","id":"b","data":[[["x"]]],"source":"s","type":"t","account_id":"","occurred_at":"o","key":"late"}`,
		`{"data":{"a":"\"(["}} [[[`, `{"id":1e5,"data":null}`, `{"data":{"a":[}}}`, ` {"k":"\\"} `,
		// review1 seeds: escaped member names, a BOM, NUL and bad UTF-8,
		// duplicate data, depth in a non-data member, numbers at the edges.
		`{"d\u0061ta":{"a":1},"s\u006furce":"x"}`, "\ufeff{\"data\":{}}", `{"id":"\u0000","data":{"\u0000":1}}`,
		"{\"id\":\"\xff\xfe\",\"data\":{}}", `{"data":{"a":1},"data":[[[[[[1]]]]]]}`, `{"key":[[[[[[[[[[]]]]]]]]]],"data":{}}`,
		`{"id":-0,"occurred_at":1E+400,"data":{"n":-1.5e-10}}`, `{"data":{"a":"\ud800"}}`, `{"data":{}}x`, `{"data" : { } , "id" : "a" }`,
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, body string, limit uint8) {
		l := int(limit)
		if l == 0 {
			l = pipeline.DefaultMaxJSONDepth
		}
		checkReadChecked(t, body, l)
	})
}
