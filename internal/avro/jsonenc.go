package avro

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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

type kind int

const (
	kNull kind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kArray
	kMap
	kUnion
	kFixed
)

type node struct {
	kind    kind
	name    string
	fields  []field        // record
	index   map[string]int // record: field name -> position
	symbols map[string]int // enum
	syms    []string       // enum symbols in order (decoding)
	symJSON [][]byte       // enum symbols as JSON strings (decoding)
	items   *node          // array items, map values
	branch  []*node        // union
	size    int            // fixed
	logical string         // logicalType goavro honours for this node, e.g. "timestamp-millis"
}

type field struct {
	name string
	typ  *node
	def  []byte // encoded default; nil when the field has none
	key  []byte // `"name":` (decoding)
}

// NewJSONEncoder compiles schema.
func NewJSONEncoder(schema string) (*JSONEncoder, error) {
	root, _, err := compile(schema)
	if err != nil {
		return nil, err
	}
	return &JSONEncoder{root: root}, nil
}

// compile parses a schema into its node tree; the builder says what it
// met on the way (names goavro would resolve otherwise).
func compile(schema string) (*node, *builder, error) {
	var s any
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		return nil, nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	b := &builder{named: map[string]*node{}}
	root, err := b.build(s, "")
	return root, b, err
}

type builder struct {
	named     map[string]*node
	ambiguous bool // a reference goavro may resolve to another type
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func (b *builder) build(s any, ns string) (*node, error) {
	switch t := s.(type) {
	case string:
		switch t {
		case "null":
			return &node{kind: kNull}, nil
		case "boolean":
			return &node{kind: kBoolean}, nil
		case "int":
			return &node{kind: kInt}, nil
		case "long":
			return &node{kind: kLong}, nil
		case "float":
			return &node{kind: kFloat}, nil
		case "double":
			return &node{kind: kDouble}, nil
		case "bytes":
			return &node{kind: kBytes}, nil
		case "string":
			return &node{kind: kString}, nil
		}
		rel, okRel := b.named[fullName(t, ns)]
		abs, okAbs := b.named[t]
		if okRel && okAbs && rel != abs {
			// goavro takes the name as written first, the Avro spec the
			// name in the enclosing namespace: the decoder leaves such a
			// schema to goavro.
			b.ambiguous = true
		}
		if okRel {
			return rel, nil
		}
		if okAbs {
			return abs, nil
		}
		return nil, fmt.Errorf("unknown type %q", t)
	case []any:
		n := &node{kind: kUnion}
		for _, br := range t {
			c, err := b.build(br, ns)
			if err != nil {
				return nil, err
			}
			n.branch = append(n.branch, c)
		}
		return n, nil
	case map[string]any:
		typ, _ := t["type"].(string)
		if typ == "" {
			if inner, ok := t["type"]; ok {
				return b.build(inner, ns)
			}
			return nil, errors.New("type without a type")
		}
		name, _ := t["name"].(string)
		if v, ok := t["namespace"].(string); ok && v != "" {
			switch typ {
			case "record", "error", "enum", "fixed": // as goavro: named types only, "" inherits
				ns = v
			}
		}
		switch typ {
		case "record", "error":
			n := &node{kind: kRecord, name: fullName(name, ns), index: map[string]int{}}
			b.named[n.name] = n
			if i := strings.LastIndexByte(n.name, '.'); i >= 0 {
				ns = n.name[:i]
			}
			fs, _ := t["fields"].([]any)
			for i, f := range fs {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %s: field %d is not an object", n.name, i)
				}
				fname, _ := fm["name"].(string)
				ft, err := b.build(fm["type"], ns)
				if err != nil {
					return nil, fmt.Errorf("record %s field %s: %w", n.name, fname, err)
				}
				fd := field{name: fname, typ: ft}
				if d, ok := fm["default"]; ok {
					raw, _ := json.Marshal(d)
					// A union's default is of its first branch.
					dt := ft
					if dt.kind == kUnion && len(dt.branch) > 0 {
						enc, err := encodeBranch(nil, dt, 0, gjson.ParseBytes(raw))
						if err != nil {
							return nil, fmt.Errorf("record %s field %s: default: %w", n.name, fname, err)
						}
						fd.def = enc
					} else {
						enc, err := encode(nil, dt, gjson.ParseBytes(raw))
						if err != nil {
							return nil, fmt.Errorf("record %s field %s: default: %w", n.name, fname, err)
						}
						fd.def = enc
					}
				}
				n.index[fname] = len(n.fields)
				n.fields = append(n.fields, fd)
			}
			return n, nil
		case "enum":
			n := &node{kind: kEnum, name: fullName(name, ns), symbols: map[string]int{}}
			syms, _ := t["symbols"].([]any)
			for i, s := range syms {
				str, _ := s.(string)
				n.symbols[str] = i
				n.syms = append(n.syms, str)
			}
			b.named[n.name] = n
			return n, nil
		case "fixed":
			var size int
			switch v := t["size"].(type) {
			case float64:
				size = int(v)
			case string: // goavro takes "size": "16" too
				size, _ = strconv.Atoi(v)
			}
			n := &node{kind: kFixed, name: fullName(name, ns), size: size}
			n.logical, _ = t["logicalType"].(string)
			b.named[n.name] = n
			return n, nil
		case "array":
			it, err := b.build(t["items"], ns)
			if err != nil {
				return nil, err
			}
			return &node{kind: kArray, items: it}, nil
		case "map":
			it, err := b.build(t["values"], ns)
			if err != nil {
				return nil, err
			}
			return &node{kind: kMap, items: it}, nil
		default:
			n, err := b.build(typ, ns) // {"type": "string", "logicalType": ...}
			if err != nil {
				return nil, err
			}
			if lt, ok := t["logicalType"].(string); ok && n.kind <= kString && n.kind != kNull {
				// A primitive built from its name is a fresh node: it can
				// carry the logical type (a named type is shared, and goavro
				// ignores a logical type on one anyway).
				n.logical = lt
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unsupported schema element %v", s)
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
