package mongodb

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
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
