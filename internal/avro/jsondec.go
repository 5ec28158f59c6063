package avro

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/sluicehq/sluice/pipeline"
)

// JSONDecoder turns Avro binary of a schema into a standard JSON body, the
// mirror image of JSONEncoder and compiled by the same schema builder: it
// walks the binary once and appends JSON, with no map per record and no
// boxed value per field. Its output is the JSON value goavro's
// NativeFromBinary + TextualFromNative give with a NewCodec codec (unions as
// plain values, bytes and fixed as strings of one code point per byte,
// NaN as null, ±Inf as ±1e999, logical types as their number), and it fails
// where goavro fails (FuzzJSONDecoder holds the two together). Differences
// in form only: records come in schema order and maps in wire order (goavro
// iterates Go maps), and non-ASCII text is written as UTF-8, not \u escapes.
//
// A JSONDecoder is immutable and safe for concurrent use.
type JSONDecoder struct {
	root *node
}

// ErrUnsupportedSchema is returned by NewJSONDecoder for schemas it does
// not render like goavro (decimal and validated-string logical types);
// callers decode those with goavro.
var ErrUnsupportedSchema = errors.New("schema not supported by the JSON decoder")

// maxDepth bounds the JSON nesting (records, arrays, maps) one value
// decodes to: a recursive schema lets the input choose it, one byte per
// level. It is pipeline.DefaultMaxJSONDepth, so whatever the decoder makes
// passes every later JSON step's depth check; goavro has no bound and
// would exhaust the stack instead. Unions add no level (a union cannot
// hold a union directly, so the recursion stays within two frames a level).
const maxDepth = pipeline.DefaultMaxJSONDepth

// errTooDeep is returned unwrapped from every level: a path of 512 field
// names would only make the message long.
var errTooDeep = fmt.Errorf("values nested deeper than %d levels", maxDepth)

// maxJSONBytes bounds the JSON one value decodes to. Items that take no
// bytes (null, empty records) let a few bytes of block counts stand for
// millions of items: without a bound a small payload could exhaust memory.
// goavro has none; no event body comes near it.
const maxJSONBytes = 64 << 20

// NewJSONDecoder compiles schema.
func NewJSONDecoder(schema string) (*JSONDecoder, error) {
	root, b, err := compile(schema)
	if err != nil {
		return nil, err
	}
	if b.ambiguous {
		return nil, fmt.Errorf("%w: a type name resolves differently in goavro", ErrUnsupportedSchema)
	}
	if err := checkDecodable(root, map[*node]bool{}); err != nil {
		return nil, err
	}
	return &JSONDecoder{root: root}, nil
}

// checkDecodable refuses what the decoder does not render like goavro and
// precomputes the JSON of field names and enum symbols. The nodes are the
// decoder's own (built for it), so writing to them is safe.
func checkDecodable(n *node, seen map[*node]bool) error {
	if seen[n] {
		return nil
	}
	seen[n] = true
	if n.kind == kEnum {
		n.symJSON = make([][]byte, len(n.syms))
		for i, sym := range n.syms {
			n.symJSON[i] = pipeline.AppendJSONString(nil, sym)
		}
	}
	switch {
	case n.kind == kBytes && n.logical == "decimal", n.kind == kFixed && n.logical == "decimal":
		return fmt.Errorf("%w: decimal logical type", ErrUnsupportedSchema)
	case n.kind == kString && n.logical == "validated-string":
		return fmt.Errorf("%w: validated-string logical type", ErrUnsupportedSchema)
	case n.kind == kFixed && n.size <= 0:
		return fmt.Errorf("fixed %s: size must be above zero", n.name)
	}
	for i := range n.fields {
		f := &n.fields[i]
		f.key = append(pipeline.AppendJSONString(nil, f.name), ':')
		if err := checkDecodable(f.typ, seen); err != nil {
			return err
		}
	}
	for _, br := range n.branch {
		if err := checkDecodable(br, seen); err != nil {
			return err
		}
	}
	if n.items != nil {
		return checkDecodable(n.items, seen)
	}
	return nil
}

// IsRecord reports whether the schema's top level is a record.
func (d *JSONDecoder) IsRecord() bool { return d.root.kind == kRecord }

// Append decodes one value from the front of data, appends its JSON to dst
// and returns the extended dst and the bytes after the value. On error dst
// may hold part of the value.
func (d *JSONDecoder) Append(dst, data []byte) (out, rest []byte, err error) {
	st := decState{data: data, limit: len(dst) + maxJSONBytes}
	dst, err = st.value(dst, d.root, 0)
	if st.pooled != nil {
		clear(st.keys[:cap(st.keys)]) // keep no payload alive in the pool
		*st.pooled = st.keys[:0]
		keysPool.Put(st.pooled)
	}
	if err != nil {
		return dst, data, err
	}
	return dst, st.data[st.pos:], nil
}

type decState struct {
	data  []byte
	pos   int
	limit int      // len(dst) past which the value's JSON is too large
	keys  [][]byte // map keys so far, for the duplicate check of small maps

	pooled *[][]byte // where keys came from
}

// keysPool recycles decState.keys: a scratch slice inside decState would
// make it escape to the heap.
var keysPool = sync.Pool{New: func() any { s := make([][]byte, 0, 64); return &s }}

var errShort = errors.New("short buffer")

// long reads a zig-zag varint exactly as goavro does: any number of
// continuation bytes (bits past 64 are dropped).
func (s *decState) long() (int64, error) {
	var v uint64
	var shift uint
	for i := s.pos; i < len(s.data); i++ {
		b := s.data[i]
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			s.pos = i + 1
			return int64(v>>1) ^ -int64(v&1), nil
		}
		shift += 7
	}
	return 0, errShort
}

// int reads an int as goavro does: a varint of any length, truncated to 32
// bits (the low 32 bits of the zig-zag decoded long).
func (s *decState) int() (int32, error) {
	v, err := s.long()
	return int32(v), err
}

// bytes reads a length-prefixed value, checking the length against what is
// left before using it.
func (s *decState) bytes() ([]byte, error) {
	n, err := s.long()
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	if n < 0 {
		return nil, fmt.Errorf("negative size %d", n)
	}
	if n > int64(len(s.data)-s.pos) {
		return nil, fmt.Errorf("size %d: %w", n, errShort)
	}
	b := s.data[s.pos : s.pos+int(n)]
	s.pos += int(n)
	return b, nil
}

// blockCount reads an array or map block header.
func (s *decState) blockCount() (int64, error) {
	n, err := s.long()
	if err != nil {
		return 0, fmt.Errorf("block count: %w", err)
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, fmt.Errorf("block count %d", n)
		}
		n = -n
		if _, err := s.long(); err != nil { // block size in bytes, unused
			return 0, fmt.Errorf("block size: %w", err)
		}
	}
	if n > maxBlockCount {
		return 0, fmt.Errorf("block count %d exceeds %d", n, maxBlockCount)
	}
	return n, nil
}

// value appends the JSON of one value of n; depth is the number of JSON
// objects and arrays it is inside. Long (140 lines) on purpose: one flat
// case per Avro type, as the specification lists them, each short, on the
// hot path (a call per type would cost a frame per field).
func (s *decState) value(dst []byte, n *node, depth int) ([]byte, error) {
	if (n.kind == kRecord || n.kind == kArray || n.kind == kMap) && depth >= maxDepth {
		return dst, errTooDeep
	}
	if len(dst) > s.limit {
		return dst, fmt.Errorf("the JSON would exceed %d bytes", maxJSONBytes)
	}
	switch n.kind {
	case kNull:
		return append(dst, "null"...), nil
	case kBoolean:
		if s.pos >= len(s.data) {
			return dst, fmt.Errorf("boolean: %w", errShort)
		}
		b := s.data[s.pos]
		s.pos++
		switch b {
		case 0:
			return append(dst, "false"...), nil
		case 1:
			return append(dst, "true"...), nil
		}
		return dst, fmt.Errorf("boolean: byte %d is neither 0 nor 1", b)
	case kInt:
		v, err := s.int()
		if err != nil {
			return dst, fmt.Errorf("int: %w", err)
		}
		return strconv.AppendInt(dst, int64(v), 10), nil
	case kLong:
		v, err := s.long()
		if err != nil {
			return dst, fmt.Errorf("long: %w", err)
		}
		if n.logical == "time-micros" {
			// goavro goes through time.Duration (nanoseconds), which wraps
			// for values beyond ±292 years of microseconds.
			v = v * 1000 / 1000
		}
		return strconv.AppendInt(dst, v, 10), nil
	case kFloat:
		if len(s.data)-s.pos < 4 {
			return dst, fmt.Errorf("float: %w", errShort)
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32(s.data[s.pos:]))
		s.pos += 4
		return appendFloat(dst, float64(f), 32), nil
	case kDouble:
		if len(s.data)-s.pos < 8 {
			return dst, fmt.Errorf("double: %w", errShort)
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(s.data[s.pos:]))
		s.pos += 8
		return appendFloat(dst, f, 64), nil
	case kString:
		b, err := s.bytes()
		if err != nil {
			return dst, fmt.Errorf("string: %w", err)
		}
		return pipeline.AppendJSONStringBytes(dst, b), nil
	case kBytes:
		b, err := s.bytes()
		if err != nil {
			return dst, fmt.Errorf("bytes: %w", err)
		}
		return appendByteString(dst, b), nil
	case kFixed:
		if len(s.data)-s.pos < n.size {
			return dst, fmt.Errorf("fixed %s of %d bytes: %w", n.name, n.size, errShort)
		}
		b := s.data[s.pos : s.pos+n.size]
		s.pos += n.size
		return appendByteString(dst, b), nil
	case kEnum:
		i, err := s.long()
		if err != nil {
			return dst, fmt.Errorf("enum %s: %w", n.name, err)
		}
		if i < 0 || i >= int64(len(n.syms)) {
			return dst, fmt.Errorf("enum %s: index %d out of 0..%d", n.name, i, len(n.syms)-1)
		}
		return append(dst, n.symJSON[i]...), nil
	case kUnion:
		i, err := s.long()
		if err != nil {
			return dst, fmt.Errorf("union index: %w", err)
		}
		if i < 0 || i >= int64(len(n.branch)) {
			return dst, fmt.Errorf("union index %d out of 0..%d", i, len(n.branch)-1)
		}
		return s.value(dst, n.branch[i], depth)
	case kRecord:
		dst = append(dst, '{')
		for i := range n.fields {
			f := &n.fields[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, f.key...)
			var err error
			if dst, err = s.value(dst, f.typ, depth+1); err != nil {
				if err == errTooDeep {
					return dst, err
				}
				return dst, fmt.Errorf("%s.%s: %w", n.name, f.name, err)
			}
		}
		return append(dst, '}'), nil
	case kArray:
		dst = append(dst, '[')
		first := true
		for {
			count, err := s.blockCount()
			if err != nil {
				return dst, fmt.Errorf("array: %w", err)
			}
			if count == 0 {
				return append(dst, ']'), nil
			}
			for ; count > 0; count-- {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				if dst, err = s.value(dst, n.items, depth+1); err != nil {
					if err == errTooDeep {
						return dst, err
					}
					return dst, fmt.Errorf("array item: %w", err)
				}
			}
		}
	case kMap:
		base := len(s.keys)
		dst, err := s.mapValue(dst, n, depth)
		s.keys = s.keys[:base]
		return dst, err
	}
	return dst, errors.New("unknown schema node")
}

func (s *decState) mapValue(dst []byte, n *node, depth int) ([]byte, error) {
	dst = append(dst, '{')
	base := len(s.keys)
	if s.pooled == nil {
		s.pooled = keysPool.Get().(*[][]byte)
		s.keys = (*s.pooled)[:0]
	}
	var big map[string]struct{} // the keys, once there are many
	first := true
	for {
		count, err := s.blockCount()
		if err != nil {
			return dst, fmt.Errorf("map: %w", err)
		}
		if count == 0 {
			return append(dst, '}'), nil
		}
		for ; count > 0; count-- {
			k, err := s.bytes()
			if err != nil {
				return dst, fmt.Errorf("map key: %w", err)
			}
			// goavro refuses a key given twice: small maps are checked
			// against the keys so far, big ones with a set.
			if big != nil {
				if _, dup := big[string(k)]; dup {
					return dst, fmt.Errorf("map: duplicate key %q", k)
				}
				big[string(k)] = struct{}{}
			} else {
				for _, seen := range s.keys[base:] {
					if string(seen) == string(k) {
						return dst, fmt.Errorf("map: duplicate key %q", k)
					}
				}
				if len(s.keys)-base < 32 {
					s.keys = append(s.keys, k)
				} else {
					big = make(map[string]struct{}, 64)
					for _, seen := range s.keys[base:] {
						big[string(seen)] = struct{}{}
					}
					big[string(k)] = struct{}{}
				}
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = pipeline.AppendJSONStringBytes(dst, k)
			dst = append(dst, ':')
			if dst, err = s.value(dst, n.items, depth+1); err != nil {
				if err == errTooDeep {
					return dst, err
				}
				return dst, fmt.Errorf("map value %q: %w", k, err)
			}
		}
	}
}
