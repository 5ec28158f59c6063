package avro

// This file compiles a schema (its JSON) into the node tree the encoder
// and the decoder walk.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

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
		return b.buildObject(t, ns)
	}
	return nil, fmt.Errorf("unsupported schema element %v", s)
}

// encodeDefault encodes a field's default value d (decoded JSON) as a
// value of ft; a union's default is of its first branch.
func encodeDefault(ft *node, d any) ([]byte, error) {
	raw, _ := json.Marshal(d)
	if ft.kind == kUnion && len(ft.branch) > 0 {
		return encodeBranch(nil, ft, 0, gjson.ParseBytes(raw))
	}
	return encode(nil, ft, gjson.ParseBytes(raw))
}

// buildObject builds a schema element written as an object: a named type
// (record, enum, fixed), a container (array, map), or a primitive with a
// logical type.
func (b *builder) buildObject(t map[string]any, ns string) (*node, error) {
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
		return b.buildRecord(t, fullName(name, ns))
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

// buildRecord builds a record (or error) named name and its fields, whose
// types are resolved in the record's namespace.
func (b *builder) buildRecord(t map[string]any, name string) (*node, error) {
	n := &node{kind: kRecord, name: name, index: map[string]int{}}
	ns := ""
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
			if fd.def, err = encodeDefault(ft, d); err != nil {
				return nil, fmt.Errorf("record %s field %s: default: %w", n.name, fname, err)
			}
		}
		n.index[fname] = len(n.fields)
		n.fields = append(n.fields, fd)
	}
	return n, nil
}
