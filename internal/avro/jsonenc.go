package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// JSONEncoder writes a JSON body as Avro binary of a schema, walking the
// JSON with gjson: no intermediate map per record, no boxing per field.
// Standard JSON as enrich writes it is accepted: union values are plain
// (the branch is chosen by the JSON type), bytes and fixed are strings,
// missing fields take their schema default. goavro's textual path costs
// hundreds of allocations per event; this costs none beyond the output.
type JSONEncoder struct {
	root *node
}

// NewJSONEncoder compiles schema.
func NewJSONEncoder(schema string) (*JSONEncoder, error) {
	root, _, err := compile(schema)
	if err != nil {
		return nil, err
	}
	return &JSONEncoder{root: root}, nil
}

// Append appends the Avro binary of body to buf. A body nested deeper
// than pipeline.DefaultMaxJSONDepth is refused before the walk: with a
// recursive schema its nesting would drive the recursion.
func (e *JSONEncoder) Append(buf, body []byte) ([]byte, error) {
	if err := pipeline.CheckJSONDepth(body, pipeline.DefaultMaxJSONDepth); err != nil {
		return buf, err
	}
	r := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	return encode(buf, e.root, r)
}

func appendLong(buf []byte, v int64) []byte {
	return binary.AppendUvarint(buf, uint64((v<<1)^(v>>63)))
}

func intOf(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number {
		return 0, false
	}
	if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
		return n, true
	}
	if f := v.Num; f == math.Trunc(f) && f >= math.MinInt64 && f <= math.MaxInt64 {
		return int64(f), true
	}
	return 0, false
}

// encode appends the Avro binary of the JSON value v as a value of n.
// Long (131 lines) on purpose: one flat case per Avro type, in the order
// the specification lists them, each short; it is the hot path, and a
// call per type would cost a frame per field.
func encode(buf []byte, n *node, v gjson.Result) ([]byte, error) {
	switch n.kind {
	case kNull:
		if v.Type != gjson.Null {
			return buf, fmt.Errorf("want null, got %s", kindOf(v))
		}
		return buf, nil
	case kBoolean:
		switch v.Type {
		case gjson.True:
			return append(buf, 1), nil
		case gjson.False:
			return append(buf, 0), nil
		}
		return buf, fmt.Errorf("want a boolean, got %s", kindOf(v))
	case kInt, kLong:
		i, ok := intOf(v)
		if !ok || n.kind == kInt && (i < math.MinInt32 || i > math.MaxInt32) {
			return buf, fmt.Errorf("want an integer, got %s", kindOf(v))
		}
		return appendLong(buf, i), nil
	case kFloat:
		if v.Type != gjson.Number {
			return buf, fmt.Errorf("want a number, got %s", kindOf(v))
		}
		return binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(v.Num))), nil
	case kDouble:
		if v.Type != gjson.Number {
			return buf, fmt.Errorf("want a number, got %s", kindOf(v))
		}
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Num)), nil
	case kBytes, kString:
		if v.Type != gjson.String {
			return buf, fmt.Errorf("want a string, got %s", kindOf(v))
		}
		buf = appendLong(buf, int64(len(v.Str)))
		return append(buf, v.Str...), nil
	case kFixed:
		if v.Type != gjson.String || len(v.Str) != n.size {
			return buf, fmt.Errorf("want a string of %d bytes for fixed %s", n.size, n.name)
		}
		return append(buf, v.Str...), nil
	case kEnum:
		i, ok := n.symbols[v.Str]
		if v.Type != gjson.String || !ok {
			return buf, fmt.Errorf("%s is not a symbol of enum %s", kindOf(v), n.name)
		}
		return appendLong(buf, int64(i)), nil
	case kArray:
		if !v.IsArray() {
			return buf, fmt.Errorf("want an array, got %s", kindOf(v))
		}
		start, count := len(buf), 0
		var err error
		v.ForEach(func(_, item gjson.Result) bool {
			buf, err = encode(buf, n.items, item)
			if err != nil {
				err = fmt.Errorf("[%d]: %w", count, err)
			}
			count++
			return err == nil
		})
		if err != nil {
			return buf, err
		}
		return closeBlock(buf, start, count), nil
	case kMap:
		if !v.IsObject() {
			return buf, fmt.Errorf("want an object, got %s", kindOf(v))
		}
		start, count := len(buf), 0
		var err error
		v.ForEach(func(k, item gjson.Result) bool {
			buf = appendLong(buf, int64(len(k.Str)))
			buf = append(buf, k.Str...)
			buf, err = encode(buf, n.items, item)
			if err != nil {
				err = fmt.Errorf("%s: %w", k.Str, err)
			}
			count++
			return err == nil
		})
		if err != nil {
			return buf, err
		}
		return closeBlock(buf, start, count), nil
	case kRecord:
		if !v.IsObject() {
			return buf, fmt.Errorf("want an object for record %s, got %s", n.name, kindOf(v))
		}
		var small [24]gjson.Result
		vals := small[:0]
		if len(n.fields) <= len(small) {
			vals = small[:len(n.fields)]
		} else {
			vals = make([]gjson.Result, len(n.fields))
		}
		v.ForEach(func(k, item gjson.Result) bool {
			if i, ok := n.index[k.Str]; ok {
				vals[i] = item
			}
			return true
		})
		for i := range n.fields {
			f := &n.fields[i]
			if !vals[i].Exists() {
				if f.def == nil {
					if f.typ.kind == kUnion && f.typ.branch[0].kind == kNull {
						buf = append(buf, 0) // an optional field left out is null
						continue
					}
					return buf, fmt.Errorf("%s: missing, and the schema gives no default", f.name)
				}
				buf = append(buf, f.def...)
				continue
			}
			var err error
			if buf, err = encode(buf, f.typ, vals[i]); err != nil {
				return buf, fmt.Errorf("%s: %w", f.name, err)
			}
		}
		return buf, nil
	case kUnion:
		i := pickBranch(n, v)
		if i < 0 {
			return buf, fmt.Errorf("%s fits no branch of the union", kindOf(v))
		}
		return encodeBranch(buf, n, i, v)
	}
	return buf, errors.New("unknown schema node")
}

// closeBlock turns the count items encoded at buf[start:] into one block:
// it puts the count in front (shifting the items, which are small) and
// appends the end-of-blocks zero. Items are encoded in one pass that way,
// without counting them first.
func closeBlock(buf []byte, start, count int) []byte {
	if count == 0 {
		return append(buf, 0)
	}
	var hdr [binary.MaxVarintLen64]byte
	h := appendLong(hdr[:0], int64(count))
	end := len(buf)
	buf = append(buf, h...)
	copy(buf[start+len(h):], buf[start:end])
	copy(buf[start:], h)
	return append(buf, 0)
}

func encodeBranch(buf []byte, n *node, i int, v gjson.Result) ([]byte, error) {
	buf = appendLong(buf, int64(i))
	return encode(buf, n.branch[i], v)
}

// pickBranch chooses the union branch for a JSON value by its type.
func pickBranch(n *node, v gjson.Result) int {
	want := func(ks ...kind) int {
		for _, k := range ks {
			for i, b := range n.branch {
				if b.kind == k {
					if k == kEnum {
						if _, ok := b.symbols[v.Str]; !ok {
							continue
						}
					}
					if k == kFixed && len(v.Str) != b.size {
						continue
					}
					return i
				}
			}
		}
		return -1
	}
	switch v.Type {
	case gjson.Null:
		return want(kNull)
	case gjson.True, gjson.False:
		return want(kBoolean)
	case gjson.Number:
		if _, ok := intOf(v); ok {
			if i := want(kLong, kInt); i >= 0 {
				if n.branch[i].kind == kInt && (v.Num < math.MinInt32 || v.Num > math.MaxInt32) {
					return want(kLong, kDouble, kFloat)
				}
				return i
			}
		}
		return want(kDouble, kFloat)
	case gjson.String:
		return want(kString, kEnum, kBytes, kFixed)
	case gjson.JSON:
		if v.IsArray() {
			return want(kArray)
		}
		return want(kRecord, kMap)
	}
	return -1
}

func kindOf(v gjson.Result) string {
	switch v.Type {
	case gjson.Null:
		if !v.Exists() {
			return "nothing"
		}
		return "null"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Number:
		return "a number"
	case gjson.String:
		return "a string"
	}
	if v.IsArray() {
		return "an array"
	}
	return "an object"
}
