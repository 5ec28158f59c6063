package pipeline_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestCheckJSONDepth(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name  string
		in    string
		limit int
		err   bool
	}{
		{"scalar", `42`, 1, false},
		{"flat object", `{"a":1}`, 1, false},
		{"two levels at limit 1", `{"a":[1]}`, 1, true},
		{"two levels at limit 2", `{"a":[1]}`, 2, false},
		{"brackets in strings do not count", `{"a":"[[[[{{{{"}`, 1, false},
		{"escaped quote keeps the string open", `{"a":"\"[[[["}`, 1, false},
		{"escaped backslash closes the string", `{"a":"\\"}`, 1, false},
		{"escaped backslash then bracket counts", `["\\",[1]]`, 1, true},
		{"siblings do not add up", `[[1],[2],[3],{"a":{}}]`, 3, false},
		{"default limit passes 512", deep(512), 0, false},
		{"default limit stops 513", deep(513), 0, true},
		{"unclosed string", `["[[[[`, 1, false},
		{"stray closers do not buy depth", `]]]][[`, 1, true},
		{"ten million openers", strings.Repeat("[", 10<<20), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pipeline.CheckJSONDepth([]byte(tt.in), tt.limit)
			if (err != nil) != tt.err {
				t.Fatalf("CheckJSONDepth = %v, want error %v", err, tt.err)
			}
			var de *pipeline.JSONDepthError
			if tt.err && !errors.As(err, &de) {
				t.Fatalf("error %T is not a *JSONDepthError", err)
			}
		})
	}
}

func TestCheckJSONDepthErrorHasNoPayload(t *testing.T) {
	in := []byte(`{"email":"alice@example.com","x":[[[[1]]]]}`)
	err := pipeline.CheckJSONDepth(in, 3)
	if err == nil || strings.Contains(err.Error(), "alice") || !strings.Contains(err.Error(), "deeper than 3") {
		t.Fatalf("error = %v", err)
	}
}

// maxDepth is the nesting depth of valid JSON through encoding/json's
// token stream (iterative), the reference CheckJSONDepth must agree with.
func maxDepth(b []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, top := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return top, true
		}
		if err != nil {
			return 0, false
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			top = max(top, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func FuzzCheckJSONDepth(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"[\"]"}]}`, `"\\"`, `[[[]]]`, strings.Repeat("[", 600), strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), `["\\\"[",[]]`} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = limit%64 + 1
		if limit < 1 {
			limit += 64
		}
		err := pipeline.CheckJSONDepth(b, limit)
		if !json.Valid(b) {
			return // only "no crash" for malformed input
		}
		d, ok := maxDepth(b)
		if !ok {
			return
		}
		if (err != nil) != (d > limit) {
			t.Fatalf("depth %d, limit %d: CheckJSONDepth = %v", d, limit, err)
		}
	})
}

func BenchmarkCheckJSONDepth(b *testing.B) {
	var doc bytes.Buffer
	doc.WriteString(`{"events":[`)
	for i := range 2000 {
		if i > 0 {
			doc.WriteByte(',')
		}
		doc.WriteString(`{"id":"evt-0001","email":"someone@example.com","tags":["a","b\"c"],"data":{"n":12345,"ok":true,"text":"lorem ipsum dolor sit amet, consectetur adipiscing"}}`)
	}
	doc.WriteString(`]}`)
	in := doc.Bytes()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := pipeline.CheckJSONDepth(in, 0); err != nil {
			b.Fatal(err)
		}
	}
}
