package decode

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

func TestDecodeMaxDepth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name     string
		maxDepth int
		payload  string
		wantErr  string // "" = decodes
	}{
		{"default allows 512 levels", 0, `{"a":` + nest(511) + `}`, ""},
		{"default refuses 513 levels", 0, `{"a":` + nest(512) + `}`, "max_depth (512)"},
		{"10 MB of [ is refused, not recursed", 0, strings.Repeat("[", 10<<20), "max_depth (512)"},
		{"objects count too", 3, `{"a":{"b":{"c":1}}}`, ""},
		{"objects count too, one over", 3, `{"a":{"b":{"c":{}}}}`, "max_depth (3)"},
		{"empty containers count", 2, `{"a":[[]]}`, "max_depth (2)"},
		{"deep but invalid later is still too deep", 0, strings.Repeat(`{"a":`, 1000) + "x", "max_depth"},
		{"invalid before the limit is invalid", 0, `{"a":[1,}`, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newJSON(t, Config{Format: "json", MaxDepth: tt.maxDepth})
			_, err := d.Apply(context.Background(), events(tt.payload))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr != "" && !pipeline.IsPermanent(err.(*pipeline.BatchError).Failures[0].Err):
				t.Fatalf("err = %v is not permanent", err)
			}
		})
	}
}

func TestDecodeMaxDepthConfig(t *testing.T) {
	for _, n := range []int{-1, 1<<20 + 1} {
		c := Config{Format: "json", MaxDepth: n}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "max_depth") {
			t.Errorf("max_depth %d: Validate = %v, want a max_depth error", n, err)
		}
	}
}

// FuzzScanJSON holds the one-pass scanner to encoding/json's and gjson's
// verdicts on any input (with depth out of the way), and its spans of the
// top-level keys to what gjson.Get finds.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"id":1}`, `{"id":"a","t":2,"id":3}`, `{"x":{"id":1},"id":[1,{"t":2}]}`, ` {"t" : "x" } `,
		`[1,2]`, `"s"`, `-0.5e+7`, `01`, `1.`, `{"a":1,}`, `[1,]`, `{"\u0069d":5}`, `{"id":"\q"}`,
		"{\"a\":\"\x01\"}", `{"a":tru}`, `nul`, `{"a" 1}`, `{"a":1 "b":2}`, `[` + strings.Repeat("[", 40),
	} {
		f.Add([]byte(s))
	}
	keys := []string{"id", "t"}
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > 1<<16 {
			return
		}
		spans := make([]span, len(keys))
		err := scanJSON(p, 10000, keys, spans)
		if got, want := err == nil, json.Valid(p); got != want {
			t.Fatalf("scanJSON(%q) = %v, encoding/json Valid = %v", p, err, want)
		}
		if got, want := err == nil, gjson.ValidBytes(p); got != want {
			t.Fatalf("scanJSON(%q) = %v, gjson.ValidBytes = %v", p, err, want)
		}
		if err != nil || firstNonSpace(p) != '{' {
			return
		}
		for i, k := range keys {
			want := gjson.GetBytes(p, k)
			got := ""
			if spans[i].end > 0 {
				got = string(p[spans[i].start:spans[i].end])
			}
			if got != want.Raw {
				t.Fatalf("key %q of %q: span %q, gjson %q", k, p, got, want.Raw)
			}
		}
	})
}

// TestScanStringEveryPosition puts each byte that needs a look at every
// offset of a long string, so the eight-bytes-at-a-time path sees it in
// every lane, and checks the verdict against encoding/json.
func TestScanStringEveryPosition(t *testing.T) {
	for _, b := range []string{"\x00", "\x1f", "\"", "\\", `\"`, `\\`, `\u00e9`, `\x`, "\x7f", "é", "\xff", " "} {
		for pos := 0; pos < 20; pos++ {
			p := []byte(`{"k":"` + strings.Repeat("a", pos) + b + strings.Repeat("b", 20-pos) + `"}`)
			got := scanJSON(p, 10, nil, nil) == nil
			if want := json.Valid(p); got != want {
				t.Errorf("%q: scanJSON valid %v, encoding/json %v", p, got, want)
			}
		}
	}
}
