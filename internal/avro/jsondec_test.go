package avro

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/sluicehq/sluice/pipeline"
)

// allTypesSchema exercises every type the decoder knows: nested and
// recursive records, unions with null/string/long/record, maps of arrays,
// enums, fixed, bytes, floats, logical types, named references.
const allTypesSchema = `{"type":"record","name":"All","namespace":"t","fields":[
 {"name":"s","type":"string"},
 {"name":"b","type":"boolean"},
 {"name":"i","type":"int"},
 {"name":"l","type":"long"},
 {"name":"f","type":"float"},
 {"name":"d","type":"double"},
 {"name":"raw","type":"bytes"},
 {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
 {"name":"fx2","type":"F4"},
 {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
 {"name":"u","type":["null","string","long",{"type":"record","name":"Inner","fields":[
   {"name":"x","type":"int"},{"name":"c","type":"Color"},{"name":"n","type":"null"}]}]},
 {"name":"opt","type":["null","Inner"],"default":null},
 {"name":"mapArr","type":{"type":"map","values":{"type":"array","items":"long"}}},
 {"name":"arrMap","type":{"type":"array","items":{"type":"map","values":["null","double","boolean"]}}},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"tmu","type":{"type":"long","logicalType":"time-micros"}},
 {"name":"date","type":["null",{"type":"int","logicalType":"date"}]},
 {"name":"uuid","type":{"type":"string","logicalType":"uuid"}},
 {"name":"list","type":["null",{"type":"record","name":"Node","fields":[
   {"name":"v","type":"string"},{"name":"next","type":["null","Node"]}]}]},
 {"name":"fb","type":["float","bytes","F4"]}
]}`

// testSchemas are the schemas the differential fuzz test runs.
func testSchemas(t testing.TB) []string {
	canonical, err := os.ReadFile("../../docs/canonical-event.avsc")
	if err != nil {
		t.Fatal(err)
	}
	return []string{string(canonical), allTypesSchema, linkedList}
}

type pair struct {
	codec *goavro.Codec
	dec   *JSONDecoder
	root  *node
}

func pairs(t testing.TB) []pair {
	var ps []pair
	for _, s := range testSchemas(t) {
		c, err := NewCodec(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewJSONDecoder(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pair{c, d, d.root})
	}
	return ps
}

// goavroJSON is the reference: what decode did before the JSONDecoder.
func goavroJSON(c *goavro.Codec, b []byte) ([]byte, []byte, error) {
	native, rest, err := c.NativeFromBinary(b)
	if err != nil {
		return nil, nil, err
	}
	out, err := c.TextualFromNative(nil, native)
	if err != nil {
		return nil, nil, fmt.Errorf("to JSON: %w", err)
	}
	return out, rest, nil
}

// sameJSON compares two JSON texts as values: objects regardless of key
// order, numbers numerically (goavro writes ±Inf as ±1e999).
func sameJSON(a, b []byte) (bool, error) {
	va, err := parseJSON(a)
	if err != nil {
		return false, fmt.Errorf("first: %w", err)
	}
	vb, err := parseJSON(b)
	if err != nil {
		return false, fmt.Errorf("second: %w", err)
	}
	return reflect.DeepEqual(normalize(va), normalize(vb)), nil
}

func parseJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("text after the value")
	}
	return v, nil
}

func normalize(v any) any {
	switch t := v.(type) {
	case json.Number:
		f, _, err := big.ParseFloat(string(t), 10, 200, big.ToNearestEven)
		if err != nil {
			return "bad number " + string(t)
		}
		return f.Text('g', 60)
	case []any:
		for i := range t {
			t[i] = normalize(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = normalize(t[k])
		}
	}
	return v
}

// checkSame asserts the decoder agrees with goavro on b.
func checkSame(t *testing.T, p pair, b []byte) {
	t.Helper()
	want, wantRest, wantErr := goavroJSON(p.codec, b)
	got, gotRest, gotErr := p.dec.Append(nil, b)
	switch {
	case wantErr != nil && gotErr == nil:
		t.Fatalf("goavro fails (%v), the decoder gives %s", wantErr, got)
	case wantErr == nil && errors.Is(gotErr, errTooDeep):
		// The decoder's one refusal goavro does not share: JSON nested
		// past pipeline.DefaultMaxJSONDepth.
		if pipeline.CheckJSONDepth(want, maxDepth) == nil {
			t.Fatalf("goavro gives %d bytes within %d levels, the decoder says too deep", len(want), maxDepth)
		}
		return
	case wantErr == nil && gotErr != nil:
		t.Fatalf("goavro gives %s, the decoder fails: %v", want, gotErr)
	case wantErr != nil:
		return
	}
	if len(wantRest) != len(gotRest) {
		t.Fatalf("rest: goavro %d bytes, decoder %d", len(wantRest), len(gotRest))
	}
	ok, err := sameJSON(want, got)
	if err != nil {
		t.Fatalf("%v\ngoavro:  %s\ndecoder: %s", err, want, got)
	}
	if !ok {
		t.Fatalf("different values\ngoavro:  %s\ndecoder: %s", want, got)
	}
}

// branchName is goavro's name of a union branch.
func branchName(n *node) string {
	switch n.kind {
	case kRecord, kEnum, kFixed:
		return n.name
	case kArray:
		return "array"
	case kMap:
		return "map"
	}
	name := [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"}[n.kind]
	switch n.logical {
	case "timestamp-millis", "timestamp-micros", "time-micros":
		if n.kind == kLong {
			return name + "." + n.logical
		}
	case "time-millis", "date":
		if n.kind == kInt {
			return name + "." + n.logical
		}
	}
	return name
}

var strs = []string{"", "a", "héllo", "tab\there", `q"uote\`, "nul\x00", "\x7f\x1f", "bad\xff\xfeutf8", "\xe2\x82", "emoji 😀", "\u2028", "/slash/", "ed\xed\xa0\x80"}

// genNative returns a random value of n in goavro's native form.
func genNative(r *rand.Rand, n *node, depth int) any {
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		return r.IntN(2) == 1
	case kInt:
		return []int32{0, 1, -1, math.MaxInt32, math.MinInt32, int32(r.Uint32())}[r.IntN(6)]
	case kLong:
		return []int64{0, 1, -1, math.MaxInt64, math.MinInt64, int64(r.Uint64()), r.Int64N(1 << 40)}[r.IntN(7)]
	case kFloat:
		return []float32{0, 1.5, -3.25e-20, float32(math.Inf(1)), float32(math.NaN()), r.Float32() * 1e30, math.MaxFloat32}[r.IntN(7)]
	case kDouble:
		return []float64{0, 0.1, -1e300, math.Inf(-1), math.NaN(), r.NormFloat64(), 1e21, 5e-324}[r.IntN(8)]
	case kString:
		return strs[r.IntN(len(strs))]
	case kBytes:
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	case kFixed:
		b := make([]byte, n.size)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	case kEnum:
		return n.syms[r.IntN(len(n.syms))]
	case kArray:
		k := r.IntN(4)
		if depth > 4 {
			k = 0
		}
		a := make([]any, k)
		for i := range a {
			a[i] = genNative(r, n.items, depth+1)
		}
		return a
	case kMap:
		k := r.IntN(4)
		if depth > 4 {
			k = 0
		}
		m := map[string]any{}
		for range k {
			m[strs[r.IntN(len(strs))]] = genNative(r, n.items, depth+1)
		}
		return m
	case kRecord:
		m := map[string]any{}
		for _, f := range n.fields {
			m[f.name] = genNative(r, f.typ, depth+1)
		}
		return m
	case kUnion:
		i := r.IntN(len(n.branch))
		if depth > 4 && n.branch[0].kind == kNull {
			i = 0
		}
		br := n.branch[i]
		if br.kind == kNull {
			return nil
		}
		return map[string]any{branchName(br): genNative(r, br, depth+1)}
	}
	panic("unknown kind")
}

// validEncodings encodes random values with goavro.
func validEncodings(t testing.TB, p pair, count int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var out [][]byte
	for range count {
		v := genNative(r, p.root, 0)
		b, err := p.codec.BinaryFromNative(nil, v)
		if err != nil {
			t.Fatalf("goavro cannot encode %#v: %v", v, err)
		}
		out = append(out, b)
	}
	return out
}

func TestJSONDecoderMatchesGoavroOnValidRecords(t *testing.T) {
	for _, p := range pairs(t) {
		for _, b := range validEncodings(t, p, 500, 1) {
			checkSame(t, p, b)
			// Every strict prefix is truncated: both must fail.
			for i := range len(b) {
				checkSame(t, p, b[:i])
			}
		}
	}
}

func TestJSONDecoderTypes(t *testing.T) {
	long := func(v int64) []byte { return appendLong(nil, v) }
	str := func(s string) []byte { return append(long(int64(len(s))), s...) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f32 := func(f float32) []byte { return binaryLE32(math.Float32bits(f)) }
	f64 := func(f float64) []byte { return binaryLE64(math.Float64bits(f)) }
	cases := []struct {
		name, schema string
		in           []byte
		want         string // JSON; "" when decoding must fail
	}{
		{"null", `"null"`, nil, `null`},
		{"true", `"boolean"`, []byte{1}, `true`},
		{"false", `"boolean"`, []byte{0}, `false`},
		{"boolean 2", `"boolean"`, []byte{2}, ``},
		{"boolean short", `"boolean"`, nil, ``},
		{"int", `"int"`, long(-64), `-64`},
		{"int max", `"int"`, long(math.MaxInt32), `2147483647`},
		{"int truncates like goavro", `"int"`, long(1 << 33), `0`},
		{"int short", `"int"`, []byte{0x80}, ``},
		{"long min", `"long"`, long(math.MinInt64), `-9223372036854775808`},
		{"long overlong varint", `"long"`, []byte{0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, `1`},
		{"float", `"float"`, f32(1.5), `1.5`},
		{"float NaN", `"float"`, f32(float32(math.NaN())), `null`},
		{"double inf", `"double"`, f64(math.Inf(1)), `1e999`},
		{"double -inf", `"double"`, f64(math.Inf(-1)), `-1e999`},
		{"double", `"double"`, f64(0.1), `0.1`},
		{"double short", `"double"`, []byte{1, 2, 3}, ``},
		{"string escapes", `"string"`, str("a\"b\\c\n\x01/é😀"), `"a\"b\\c\n\u0001/é😀"`},
		{"string bad utf8", `"string"`, str("a\xffb\xe2\x82"), `"a\ufffdb\ufffd\ufffd"`},
		{"string negative size", `"string"`, long(-1), ``},
		{"string size past end", `"string"`, long(5), ``},
		{"string huge size", `"string"`, long(math.MaxInt64), ``},
		{"bytes as code points", `"bytes"`, cat(long(4), []byte{0, 'a', 0x80, 0xff}), `"\u0000a\u0080\u00ff"`},
		{"fixed", `{"type":"fixed","name":"F","size":2}`, []byte{'"', 0xe9}, `"\"\u00e9"`},
		{"fixed string size", `{"type":"fixed","name":"F","size":"2"}`, []byte{'a', 'b'}, `"ab"`},
		{"fixed short", `{"type":"fixed","name":"F","size":3}`, []byte{1}, ``},
		{"enum", `{"type":"enum","name":"E","symbols":["A","B"]}`, long(1), `"B"`},
		{"enum out of range", `{"type":"enum","name":"E","symbols":["A","B"]}`, long(2), ``},
		{"enum negative", `{"type":"enum","name":"E","symbols":["A","B"]}`, long(-1), ``},
		{"union null", `["null","string"]`, long(0), `null`},
		{"union string", `["null","string"]`, cat(long(1), str("x")), `"x"`},
		{"union bad index", `["null","string"]`, long(2), ``},
		{"union negative index", `["null","string"]`, long(-1), ``},
		{"array blocks", `{"type":"array","items":"int"}`, cat(long(2), long(1), long(2), long(-1), long(1), long(3), long(0)), `[1,2,3]`},
		{"array empty", `{"type":"array","items":"int"}`, long(0), `[]`},
		{"array too many", `{"type":"array","items":"null"}`, cat(long(maxBlockCount+1), long(0)), ``},
		{"array min block", `{"type":"array","items":"null"}`, long(math.MinInt64), ``},
		{"array unterminated", `{"type":"array","items":"int"}`, cat(long(1), long(1)), ``},
		{"map", `{"type":"map","values":"long"}`, cat(long(2), str("a"), long(1), str("b"), long(2), long(0)), `{"a":1,"b":2}`},
		{"map duplicate key", `{"type":"map","values":"long"}`, cat(long(1), str("a"), long(1), long(1), str("a"), long(2), long(0)), ``},
		{"record", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":{"type":"array","items":"R"}}]}`,
			cat(long(1), long(1), long(2), long(0), long(0)), `{"a":1,"b":[{"a":2,"b":[]}]}`},
		{"record short", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}`, long(1), ``},
		{"timestamp-millis", `{"type":"long","logicalType":"timestamp-millis"}`, long(-1), `-1`},
		{"time-micros wraps like goavro", `{"type":"long","logicalType":"time-micros"}`, long(math.MaxInt64), wrapMicros(math.MaxInt64)},
		{"date", `{"type":"int","logicalType":"date"}`, long(-719162), `-719162`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewJSONDecoder(c.schema)
			if err != nil {
				t.Fatal(err)
			}
			got, rest, err := d.Append([]byte("prefix:"), c.in)
			if c.want == "" {
				if err == nil {
					t.Fatalf("want an error, got %s", got)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if len(rest) != 0 {
					t.Fatalf("%d bytes left", len(rest))
				}
				if !strings.HasPrefix(string(got), "prefix:") {
					t.Fatalf("dst not extended: %s", got)
				}
				if ok, err := sameJSON(got[len("prefix:"):], []byte(c.want)); err != nil || !ok {
					t.Fatalf("got %s, want %s (%v)", got, c.want, err)
				}
			}
			// And goavro agrees.
			codec, err := NewCodec(c.schema)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, pair{codec, d, d.root}, c.in)
		})
	}
}

func TestJSONDecoderUnsupported(t *testing.T) {
	for _, s := range []string{
		`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`,
		`{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":4}`,
		`{"type":"string","logicalType":"validated-string","pattern":"^a"}`,
	} {
		if _, err := NewJSONDecoder(s); err == nil {
			t.Errorf("%s: want ErrUnsupportedSchema", s)
		}
	}
}

func TestJSONDecoderDepth(t *testing.T) {
	d, err := NewJSONDecoder(`{"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	in := bytes.Repeat([]byte{2}, maxDepth)
	in = append(in, 0)
	if _, _, err := d.Append(nil, in); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Fatalf("want a depth error, got %v", err)
	}
}

func binaryLE32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
func binaryLE64(v uint64) []byte {
	return append(binaryLE32(uint32(v)), binaryLE32(uint32(v>>32))...)
}

func FuzzJSONDecoder(f *testing.F) {
	ps := pairs(f)
	for i, p := range ps {
		for _, b := range validEncodings(f, p, 50, uint64(i)) {
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	// A recursive record nested just within and just past the bound, and
	// far past it (the linked list is the third schema).
	f.Add(uint8(2), deepList(maxDepth))
	f.Add(uint8(2), deepList(maxDepth+1))
	f.Add(uint8(2), deepList(20000))
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		checkSame(t, ps[int(which)%len(ps)], b)
	})
}

func wrapMicros(v int64) string { return fmt.Sprint(v * 1000 / 1000) }

// TestJSONDecoderStringBytes: strings (and the ASCII bytes of bytes) are written by
// pipeline.AppendJSONString, the bytes json.Marshal writes: each invalid
// UTF-8 byte as \ufffd (as before); U+2028, U+2029, <, > and & now escaped
// (goavro and this decoder wrote them raw: the same JSON value).
func TestJSONDecoderStringBytes(t *testing.T) {
	d, err := NewJSONDecoder(`"string"`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"a\xffb\xe2\x82", `"a\ufffdb\ufffd\ufffd"`},
		{"<a\u2028&\u2029>", `"\u003ca\u2028\u0026\u2029\u003e"`},
		{"q\"\b\x01", `"q\"\b\u0001"`},
	}
	for _, tt := range tests {
		in := append(binary.AppendVarint(nil, int64(len(tt.in))), tt.in...)
		got, _, err := d.Append(nil, in)
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %s (%v), want %s", tt.in, got, err, tt.want)
		}
	}
	// bytes: one code point per byte; the ASCII ones by the same rule.
	bd, err := NewJSONDecoder(`"bytes"`)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte{0, '<', 'a', '"', 0xe9}
	got, _, err := bd.Append(nil, append(binary.AppendVarint(nil, int64(len(raw))), raw...))
	if want := `"\u0000\u003ca\"é"`; err != nil || string(got) != want {
		t.Errorf("bytes %q: got %s (%v), want %s", raw, got, err, want)
	}
}

// TestJSONDecoderBoundsOutput: a few hundred bytes of block counts of
// zero-byte items must not expand into unbounded JSON.
func TestJSONDecoderBoundsOutput(t *testing.T) {
	d, err := NewJSONDecoder(`{"type":"array","items":"null"}`)
	if err != nil {
		t.Fatal(err)
	}
	block := []byte{0x80, 0x80, 0x08} // zig-zag varint of 65,536 items
	in := append(bytes.Repeat(block, 300), 0)
	out, _, err := d.Append(nil, in)
	if err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Fatalf("want an output bound error, got %v", err)
	}
	if len(out) > maxJSONBytes+1024 {
		t.Fatalf("%d bytes of JSON written past the bound", len(out))
	}
}
