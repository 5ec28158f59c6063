package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/pipeline"
)

// checkJSONString checks every promise of the writer for s: the same bytes
// as json.Marshal from all three entry points, valid JSON and UTF-8, and a
// round trip equal to encoding/json's.
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	got := pipeline.AppendJSONString([]byte("x"), s)
	if !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("AppendJSONString(%q) = %s, encoding/json %s", s, got[1:], want)
	}
	if b := pipeline.AppendJSONStringBytes(nil, []byte(s)); !bytes.Equal(b, want) {
		t.Fatalf("AppendJSONStringBytes(%q) = %s, encoding/json %s", s, b, want)
	}
	const head = `{"k":"`
	tail := pipeline.EscapeJSONStringTail(append([]byte(head), s...), len(head))
	if w := append([]byte(head), want[1:len(want)-1]...); !bytes.Equal(tail, w) {
		t.Fatalf("EscapeJSONStringTail(%q) = %s, want %s", s, tail, w)
	}
	if !json.Valid(got[1:]) || !utf8.Valid(got) {
		t.Fatalf("AppendJSONString(%q) = %q: not valid JSON / UTF-8", s, got[1:])
	}
	var back, stdBack string
	if err := json.Unmarshal(got[1:], &back); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &stdBack); err != nil {
		t.Fatal(err)
	}
	if back != stdBack {
		t.Fatalf("AppendJSONString(%q) decodes to %q, encoding/json's encoding to %q", s, back, stdBack)
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "hello world, long enough for eight", `"hello world, long enough for eight"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls", "\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"html escaped", "<a href='x'>&</a>", `"\u003ca href='x'\u003e\u0026\u003c/a\u003e"`},
		{"html after a long plain run", "0123456789abcdef&", `"0123456789abcdef\u0026"`},
		{"multibyte", "héllo → 世界 🙂", `"héllo → 世界 🙂"`},
		{"line separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"stray continuation byte", "a\x80b", `"a\ufffdb"`},
		{"truncated sequence", "a\xe4\xb8", `"a\ufffd\ufffd"`},
		{"overlong slash", "\xc0\xaf", `"\ufffd\ufffd"`},
		{"surrogate half", "\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"over U+10FFFF", "\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`},
		{"invalid after a long plain run", "0123456789abcdef\xff", `"0123456789abcdef\ufffd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pipeline.AppendJSONString(nil, tt.in); string(got) != tt.want {
				t.Errorf("AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			checkJSONString(t, tt.in)
		})
	}
}

// TestEscapeJSONStringTailInPlace: nothing to escape leaves the buffer (and
// its array) as it is; the bytes before start are never touched.
func TestEscapeJSONStringTailInPlace(t *testing.T) {
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"_id":"`...)
	buf = append(buf, "plain-id-123"...)
	out := pipeline.EscapeJSONStringTail(buf, 8)
	if &out[0] != &buf[0] || string(out) != `{"_id":"plain-id-123` {
		t.Fatalf("plain tail rewritten: %s", out)
	}
	out = pipeline.EscapeJSONStringTail(append(out[:8], "a\"\xffb"...), 8)
	if string(out) != `{"_id":"a\"\ufffdb` {
		t.Fatalf("got %s", out)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "<>&", "\u2028\u2029", "a\x80b", "\xed\xa0\x80", "\xf4\x90\x80\x80", "é\xc3", strings.Repeat("x", 17) + "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkJSONString(t, s)
	})
}

func ExampleAppendJSONString() {
	buf := []byte(`{"name":`)
	buf = pipeline.AppendJSONString(buf, "Zoë \"Z\" <z@example.com>\x80")
	buf = append(buf, '}')
	fmt.Println(string(buf))
	// Output: {"name":"Zoë \"Z\" \u003cz@example.com\u003e\ufffd"}
}

func BenchmarkAppendJSONString(b *testing.B) {
	inputs := []struct{ name, s string }{
		{"ascii-32", "contact-000123@example-corp.com!"},
		{"ascii-1k", strings.Repeat("the quick brown fox jumps over ", 34)},
		{"utf8-1k", strings.Repeat("Grüße aus Köln — 世界 ", 40)},
		{"escapes-1k", strings.Repeat("line \"one\"\n\ttab\\ ", 60)},
		{"url-128", "https://example.com/track?utm_source=mail&utm_medium=email&utm_campaign=q4&id=1234567890&sig=abcdef"},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			buf := make([]byte, 0, 4*len(in.s)+2)
			b.SetBytes(int64(len(in.s)))
			b.ReportAllocs()
			for b.Loop() {
				buf = pipeline.AppendJSONString(buf[:0], in.s)
			}
		})
		b.Run(in.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(in.s)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = json.Marshal(in.s)
			}
		})
	}
}
