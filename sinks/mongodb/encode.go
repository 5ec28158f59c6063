package mongodb

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/sluicehq/sluice/pipeline"
)

// plainObject reports whether body is a JSON object without Extended JSON
// keys ("$date", "$oid", …), which can be encoded straight to BSON. The
// result's strings are copies, safe to keep.
func plainObject(body []byte) (gjson.Result, bool) {
	if bytes.Contains(body, []byte(`"$`)) || !gjson.ValidBytes(body) {
		return gjson.Result{}, false
	}
	r := gjson.ParseBytes(body)
	return r, r.IsObject()
}

// viewPlainObject is plainObject without copying body: the result's
// strings alias body, so they must not outlive this use of it.
// appendFullDoc copies all it reads into BSON, so it can take a view, and
// the body's copy was the largest allocation of an event in this sink.
func viewPlainObject(body []byte) (gjson.Result, bool) {
	if len(body) == 0 || bytes.Contains(body, []byte(`"$`)) || !gjson.ValidBytes(body) {
		return gjson.Result{}, false
	}
	r := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	return r, r.IsObject()
}

// appendFullDoc appends the BSON of the document insert and replace
// write for a plain JSON object: _id first, then the object's fields (a
// top-level _id of the object is replaced by id). It encodes exactly what
// bson.Marshal(fullDoc(id, jsonDoc(obj))) does, without building the
// bson.D in between: on the consumer's hot path that tree and the
// reflection over it were most of the sink's CPU and allocations.
func appendFullDoc(dst []byte, id string, obj gjson.Result) ([]byte, error) {
	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "_id", id)
	var err error
	obj.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "_id" {
			return true
		}
		dst, err = appendJSONElement(dst, k.Str, v)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}

// appendJSONElement appends one JSON value as a BSON element, with
// jsonValue's number rule: integers are int32 when they fit, else int64,
// other numbers are doubles.
func appendJSONElement(dst []byte, key string, v gjson.Result) ([]byte, error) {
	if strings.IndexByte(key, 0) >= 0 {
		return nil, fmt.Errorf("field name %q contains a NUL byte, which BSON cannot hold", key)
	}
	switch v.Type {
	case gjson.Null:
		return bsoncore.AppendNullElement(dst, key), nil
	case gjson.False:
		return bsoncore.AppendBooleanElement(dst, key, false), nil
	case gjson.True:
		return bsoncore.AppendBooleanElement(dst, key, true), nil
	case gjson.String:
		return bsoncore.AppendStringElement(dst, key, v.Str), nil
	case gjson.Number:
		if !strings.ContainsAny(v.Raw, ".eE") {
			if n, err := strconv.ParseInt(v.Raw, 10, 64); err == nil {
				if n == int64(int32(n)) {
					return bsoncore.AppendInt32Element(dst, key, int32(n)), nil
				}
				return bsoncore.AppendInt64Element(dst, key, n), nil
			}
		}
		return bsoncore.AppendDoubleElement(dst, key, v.Num), nil
	}
	var err error
	if v.IsArray() {
		var start int32
		start, dst = bsoncore.AppendArrayElementStart(dst, key)
		var idx [20]byte
		i := 0
		v.ForEach(func(_, e gjson.Result) bool {
			dst, err = appendJSONElement(dst, string(strconv.AppendInt(idx[:0], int64(i), 10)), e)
			i++
			return err == nil
		})
		if err != nil {
			return nil, err
		}
		return bsoncore.AppendArrayEnd(dst, start)
	}
	var start int32
	start, dst = bsoncore.AppendDocumentElementStart(dst, key)
	v.ForEach(func(k, e gjson.Result) bool {
		dst, err = appendJSONElement(dst, k.Str, e)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return bsoncore.AppendDocumentEnd(dst, start)
}

// appendFullDocJSON is appendFullDoc in one pass over the JSON body:
// validating, walking and encoding at once, where the gjson path scans a
// body three to four times (validation, then each level's values once per
// enclosing level). It handles what it can prove equal to the gjson path
// and reports false for the rest (an escaped string it hands to gjson
// instead; a NUL in a field name, malformed JSON, anything unusual), so the
// caller falls back to plainObject + appendFullDoc, whose result and
// errors are the reference: FuzzAppendFullDocJSON holds the two equal.
// It declines a body nested deeper than pipeline.DefaultMaxJSONDepth or
// holding `"$` (what build checks before the gjson path).
func appendFullDocJSON(dst []byte, id string, body []byte) ([]byte, bool) {
	dst, res, _ := encodeDirect(dst, id, body, pipeline.DefaultMaxJSONDepth)
	return dst, res == directTaken
}

// What encodeDirect made of a body.
const (
	directTaken    = iota // encoded: the body is well-formed, within the depth limit and free of `"$`
	directDeclined        // left to the gjson path, which decides after its own checks
	directDeep            // nested deeper than the limit: the offset is that of the bracket that went over it
)

// encodeDirect is appendFullDocJSON with the two checks build made before
// it folded in, so a body is scanned once: the nesting depth (counted as
// pipeline.CheckJSONDepth counts it: on a well-formed prefix the first
// bracket over limit is the one CheckJSONDepth reports, so directDeep
// comes with its offset) and the bytes `"$` (Extended JSON keys; in
// well-formed JSON a quote before '$' opens a string or is an escaped
// quote inside one, and both are seen here). TestEncodeDirectChecks and
// FuzzEncodeDirect hold it to CheckJSONDepth and bytes.Contains.
func encodeDirect(dst []byte, id string, body []byte, limit int) ([]byte, int, int) {
	d := directJSON{b: body, limit: limit, deepAt: -1}
	d.ws()
	if d.i >= len(body) || body[d.i] != '{' {
		return dst, directDeclined, 0
	}
	if d.depth = 1; d.depth > d.limit {
		return dst, directDeep, d.i
	}
	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "_id", id)
	dst, ok := d.object(dst, true)
	switch {
	case d.deepAt >= 0:
		return dst, directDeep, d.deepAt
	case !ok:
		return dst, directDeclined, 0
	}
	if d.ws(); d.i != len(body) {
		return dst, directDeclined, 0
	}
	dst, err := bsoncore.AppendDocumentEnd(dst, start)
	if err != nil {
		return dst, directDeclined, 0
	}
	return dst, directTaken, 0
}

// directJSON is encodeDirect's position in the body, the depth of the
// value it is in, and where it went over limit (-1: it did not).
type directJSON struct {
	b            []byte
	i            int
	depth, limit int
	deepAt       int
}

// open enters the array or object at d.i; false when that goes over the
// limit (recorded in deepAt).
func (d *directJSON) open() bool {
	if d.depth++; d.depth > d.limit {
		d.deepAt = d.i
		return false
	}
	return true
}

func (d *directJSON) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object appends the members of the object at d.i ('{') as elements;
// top leaves out "_id" members (appendFullDoc writes the given one).
func (d *directJSON) object(dst []byte, top bool) ([]byte, bool) {
	d.i++ // '{'
	if d.ws(); d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return dst, true
	}
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return dst, false
		}
		key, ok := d.str()
		if !ok || strings.IndexByte(key, 0) >= 0 {
			return dst, false
		}
		if d.ws(); d.i >= len(d.b) || d.b[d.i] != ':' {
			return dst, false
		}
		d.i++
		d.ws()
		if top && key == "_id" {
			mark := len(dst)
			if dst, ok = d.value(dst, key); !ok {
				return dst, false
			}
			dst = dst[:mark]
		} else if dst, ok = d.value(dst, key); !ok {
			return dst, false
		}
		if more, ok := d.next('}'); !more {
			return dst, ok
		}
	}
}

// array appends the elements of the array at d.i ('[') keyed "0", "1", …
func (d *directJSON) array(dst []byte) ([]byte, bool) {
	d.i++ // '['
	if d.ws(); d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return dst, true
	}
	var idx [20]byte
	for n := 0; ; n++ {
		var ok bool
		if dst, ok = d.value(dst, string(strconv.AppendInt(idx[:0], int64(n), 10))); !ok {
			return dst, false
		}
		if more, ok := d.next(']'); !more {
			return dst, ok
		}
	}
}

// next steps past what follows a member or element: a ',' and the
// whitespace after it (more), or end, which closes the object or array
// (done, ok); anything else is malformed (not ok).
func (d *directJSON) next(end byte) (more, ok bool) {
	if d.ws(); d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		d.ws()
		return true, true
	case end:
		d.i++
		return false, true
	}
	return false, false
}

// value appends the value at d.i as the element key, with appendJSONElement's
// types.
func (d *directJSON) value(dst []byte, key string) ([]byte, bool) {
	if d.i >= len(d.b) {
		return dst, false
	}
	var ok bool
	switch c := d.b[d.i]; {
	case c == '"':
		var s string
		if s, ok = d.str(); ok {
			dst = bsoncore.AppendStringElement(dst, key, s)
		}
	case c == '{':
		if !d.open() {
			return dst, false
		}
		var start int32
		start, dst = bsoncore.AppendDocumentElementStart(dst, key)
		if dst, ok = d.object(dst, false); ok {
			dst, ok = appendEnd(dst, start, bsoncore.AppendDocumentEnd)
		}
		d.depth--
	case c == '[':
		if !d.open() {
			return dst, false
		}
		var start int32
		start, dst = bsoncore.AppendArrayElementStart(dst, key)
		if dst, ok = d.array(dst); ok {
			dst, ok = appendEnd(dst, start, bsoncore.AppendArrayEnd)
		}
		d.depth--
	case c == 't':
		if ok = d.literal("true"); ok {
			dst = bsoncore.AppendBooleanElement(dst, key, true)
		}
	case c == 'f':
		if ok = d.literal("false"); ok {
			dst = bsoncore.AppendBooleanElement(dst, key, false)
		}
	case c == 'n':
		if ok = d.literal("null"); ok {
			dst = bsoncore.AppendNullElement(dst, key)
		}
	case c == '-' || (c >= '0' && c <= '9'):
		var raw string
		if raw, ok = d.number(); ok {
			dst = appendNumber(dst, key, raw)
		}
	}
	return dst, ok
}

func appendEnd(dst []byte, start int32, end func([]byte, int32) ([]byte, error)) ([]byte, bool) {
	dst, err := end(dst, start)
	return dst, err == nil
}

// appendNumber is appendJSONElement's number rule for the JSON number raw.
func appendNumber(dst []byte, key, raw string) []byte {
	if !strings.ContainsAny(raw, ".eE") {
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			if n == int64(int32(n)) {
				return bsoncore.AppendInt32Element(dst, key, int32(n))
			}
			return bsoncore.AppendInt64Element(dst, key, n)
		}
	}
	f, _ := strconv.ParseFloat(raw, 64) // as gjson's Num: ±Inf past float64
	return bsoncore.AppendDoubleElement(dst, key, f)
}

func (d *directJSON) literal(lit string) bool {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// str reads the string at d.i ('"'). Without escapes it is a view of the
// body (BSON copies it); with escapes gjson unescapes it, as the gjson
// path does. A string starting with '$', or with an escaped quote before
// a '$' in it, is declined: the body holds `"$`.
func (d *directJSON) str() (string, bool) {
	start := d.i
	if start+1 < len(d.b) && d.b[start+1] == '$' {
		return "", false
	}
	escaped := false
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			if escaped {
				return gjson.Parse(string(d.b[start:d.i])).Str, true
			}
			return unsafe.String(unsafe.SliceData(d.b[start+1:j]), j-start-1), true
		case c < ' ':
			return "", false
		case c == '\\':
			escaped = true
			j++
			if j >= len(d.b) {
				return "", false
			}
			switch d.b[j] {
			case '"':
				if j+1 < len(d.b) && d.b[j+1] == '$' {
					return "", false
				}
			case '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d.b) || !isHex4(d.b[j+1:j+5]) {
					return "", false
				}
				j += 4
			default:
				return "", false
			}
		}
	}
	return "", false
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number reads the JSON number at d.i: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *directJSON) number() (string, bool) {
	b, start, i := d.b, d.i, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return "", false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return "", false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return "", false
		}
	}
	d.i = i
	return unsafe.String(unsafe.SliceData(b[start:i]), i-start), true
}
