package mongodb

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// checkEncodeDirect holds encodeDirect to the checks it replaced: it takes
// a body only when pipeline.CheckJSONDepth passes it and it holds no `"$`,
// then writing the gjson path's bytes; it reports a body too deep exactly
// only when CheckJSONDepth does, at the same offset (the table below has
// the bodies it must find too deep); whatever it declines, build checks
// and encodes as before.
func checkEncodeDirect(t *testing.T, body []byte, limit int) {
	t.Helper()
	got, res, at := encodeDirect([]byte("prefix"), "id", body, limit)
	derr := pipeline.CheckJSONDepth(body, limit)
	switch res {
	case directDeep:
		var de *pipeline.JSONDepthError
		if !errors.As(derr, &de) || de.Offset != at {
			t.Fatalf("%q (limit %d): too deep at %d, CheckJSONDepth says %v", body, limit, at, derr)
		}
	case directTaken:
		if derr != nil || bytes.Contains(body, []byte(`"$`)) {
			t.Fatalf("%q (limit %d): taken, but CheckJSONDepth says %v, or it holds \"$", body, limit, derr)
		}
		r, plain := viewPlainObject(body)
		if !plain {
			t.Fatalf("%q: taken, but the gjson path refuses it", body)
		}
		want, err := appendFullDoc([]byte("prefix"), "id", r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: taken as %v, the gjson path gives %v, %v", body, bson.Raw(got[6:]), bson.Raw(want[6:]), err)
		}
	case directDeclined: // build runs CheckJSONDepth and the gjson path's checks on it
	default:
		t.Fatalf("outcome %d", res)
	}
}

func TestEncodeDirectChecks(t *testing.T) {
	deep := func(n int) string { return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}` }
	tests := []struct {
		body  string
		limit int
		want  int
	}{
		{`{"a":1}`, 512, directTaken},
		{deep(511), 512, directTaken},
		{deep(512), 512, directDeep},
		{`{"a":` + strings.Repeat("[", 10<<10), 512, directDeep}, // unterminated: the bracket over the limit still counts
		{`{"a":{"b":{"c":1}}}`, 3, directTaken},
		{`{"a":{"b":{"c":{}}}}`, 3, directDeep},
		{`{}`, 1, directTaken},
		{`{"a":{}}`, 1, directDeep},
		{`{"a":"$5"}`, 512, directDeclined},
		{`{"$date":1}`, 512, directDeclined},
		{`{"a":{"$oid":"x"}}`, 512, directDeclined},
		{`{"a":"x\"$y"}`, 512, directDeclined},
		{`{"a":"x\\$y"}`, 512, directTaken}, // a backslash before '$', no quote
		{`{"a":"x$"}`, 512, directTaken},
		{`{"a":"\u0022$"}`, 512, directTaken}, // an escaped quote written as \u0022: no "$ bytes
		{`{"a":[1,2,"$"]}`, 512, directDeclined},
		{`{"a":01}`, 512, directDeclined},
		{`[` + deep(600) + `]`, 512, directDeclined}, // not an object: CheckJSONDepth decides in build
	}
	for _, tt := range tests {
		_, res, _ := encodeDirect(nil, "id", []byte(tt.body), tt.limit)
		if res != tt.want {
			t.Errorf("%.60q (limit %d): outcome %d, want %d", tt.body, tt.limit, res, tt.want)
		}
		checkEncodeDirect(t, []byte(tt.body), tt.limit)
	}
}

func FuzzEncodeDirect(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2.5,"x",{"b":null}]}`, `{"$a":1}`, `{"a":"\"$"}`, `{"a":[[[[{}]]]]}`, `{"a":[[[[`, `{"s":"[[[[\"[[["}`, `{"a":"b"}}}}`,
		// review1 seeds: escaped '$', NUL in a key, numbers at int64/float
		// edges, lone surrogates, duplicate keys, bad UTF-8.
		`{"a":"\u0024x"}`, `{"\u0024a":1}`, `{"a\u0000b":1}`, `{"a":9223372036854775807,"b":9223372036854775808,"c":-9223372036854775809}`,
		`{"a":1e400,"b":-0,"c":1.0,"d":1E-400}`, `{"a":"\ud800","b":"\udc00\ud800"}`, `{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"_id":"x","a":1}`,
		` {"a":1} `, `{"a":[]}`, `{"":""}`} {
		f.Add([]byte(s), uint8(3))
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, limit uint8) {
		l := int(limit)
		if l == 0 {
			l = pipeline.DefaultMaxJSONDepth
		}
		checkEncodeDirect(t, body, l)
	})
}

// TestBuildChecksAsBefore: build's outcome for a body is what it was when
// the depth and `"$` checks ran before the one pass: the depth error
// first (before a bad collection), Extended JSON through the bson.D path,
// plain objects encoded to the same bytes, in every mode.
func TestBuildChecksAsBefore(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", 600) + `}`
	depthErr := "body of event e1: " + pipeline.CheckJSONDepth([]byte(deep), 0).Error()
	tests := []struct {
		body, coll string
		wantErr    string // a prefix; "" for none
	}{
		{deep, "events", depthErr},
		{deep, "{{missing}}", depthErr},
		{`{"a":1,"b":"$x"}`, "events", ""},
		{`{"when":{"$date":"2026-01-01T00:00:00Z"},"data":{"Id":"x1"}}`, "events", ""},
		{`{"data":{"Id":"x2","Email":"a@b.c"}}`, "events", ""},
		{`{"data":{"Id":"x2","Email":"a@b.c"}}`, "{{missing}}", "collection:"},
		{`{"a":`, "events", "event e1"},
	}
	for _, mode := range []string{ModeInsert, ModeReplace, ModeUpsert} {
		for _, tt := range tests {
			c := benchConfig(mode, "mongodb://127.0.0.1:1/", "direct")
			c.Collection = *pipeline.MustParseTemplate(tt.coll)
			s, err := New(pipelinetest.BuildContext(), c)
			if err != nil {
				t.Fatal(err)
			}
			ev := &pipeline.Event{ID: "e1", Body: []byte(tt.body), Payload: []byte(tt.body)}
			_, o, err := s.build(ev, new([]byte))
			switch {
			case tt.wantErr == "" && err != nil && mode != ModeUpsert:
				t.Errorf("%s %.30q: %v", mode, tt.body, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("%s %.30q, collection %s: error %v, want %q", mode, tt.body, tt.coll, err, tt.wantErr)
			case err == nil && mode == ModeInsert:
				if want := referenceDocBytes(t, ev); !bytes.Equal(o.doc, want) {
					t.Errorf("%s %.30q: document %v, want %v", mode, tt.body, o.doc, bson.Raw(want))
				}
			}
		}
	}
}

// referenceDocBytes is insert's document as the paths before the one pass
// made it: Extended JSON through the bson.D, a plain object through gjson.
func referenceDocBytes(t *testing.T, ev *pipeline.Event) []byte {
	t.Helper()
	if !bytes.Contains(ev.Body, []byte(`"$`)) {
		if r, plain := viewPlainObject(ev.Body); plain {
			doc, err := appendFullDoc(nil, ev.ID, r)
			if err != nil {
				t.Fatal(err)
			}
			return doc
		}
	}
	body, err := bodyDoc(ev)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := bson.Marshal(fullDoc(ev.ID, body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
