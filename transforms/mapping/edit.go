package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// A step whose set, rename and delete paths are all plain top-level keys
// is applied in one pass: the new body is written once, with every edit,
// instead of once per edit as sjson does. The result is what applying the
// edits one after the other with sjson gives (FuzzOnePass holds the two
// equal, up to whitespace between members).

// op is one edit of a one-pass step, in the order the step applies them.
type op struct {
	kind     opKind
	slot     int // the key set or deleted; rename: the key moved from
	to       int // rename: the key moved to
	setIndex int // set: which value
}

type opKind uint8

const (
	opSet opKind = iota
	opRename
	opDelete
)

// ref is a value's bytes: in the body (inBody) or in work.vals.
type ref struct {
	inBody     bool
	start, end int
}

// slotState is what the edits so far did to one key.
type slotState struct {
	found    bool // the key is in the body (val is then its first value there)
	present  bool // the key still holds a value at its place in the body
	appended int  // index in work.appended, -1 if not appended
	val      ref
}

// member is one top-level key: value of the body.
type member struct {
	keyStart, valStart, valEnd int
	slot                       int // the key's slot at its first occurrence, else -1
}

// plainKey reports whether path is one top-level key with no gjson or
// sjson path syntax, which the one-pass editor handles: a top-level key
// that sjson cannot read as an array index or append (a leading digit or
// '-').
func plainKey(path string) bool {
	return pipeline.IsTopLevelKey(path) && path[0] != '-' && !(path[0] >= '0' && path[0] <= '9')
}

var errNotOnePass = errors.New("body not editable in one pass")

// members lists the top-level members of body, matching their keys to
// slots. It fails (and the step falls back to sjson) when body is not an
// object it can walk or repeats a key the step edits.
func (w *work) members(body []byte, slots []string) (objStart, objEnd int, err error) {
	w.mems = w.mems[:0]
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return 0, 0, errNotOnePass
	}
	objStart = i
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return objStart, i, nil
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return 0, 0, errNotOnePass
		}
		keyStart := i
		keyEnd, escaped := skipString(body, i)
		if keyEnd < 0 {
			return 0, 0, errNotOnePass
		}
		i = skipSpace(body, keyEnd)
		if i >= len(body) || body[i] != ':' {
			return 0, 0, errNotOnePass
		}
		valStart := skipSpace(body, i+1)
		valEnd := skipValue(body, valStart)
		if valEnd < 0 {
			return 0, 0, errNotOnePass
		}
		m := member{keyStart: keyStart, valStart: valStart, valEnd: valEnd, slot: -1}
		if s := matchSlot(body[keyStart+1:keyEnd-1], escaped, slots); s >= 0 {
			if w.state[s].found {
				return 0, 0, errNotOnePass // a repeated key: sjson's first-match rules apply
			}
			w.state[s].found, w.state[s].present = true, true
			w.state[s].val = ref{inBody: true, start: valStart, end: valEnd}
			m.slot = s
		}
		w.mems = append(w.mems, m)
		i = skipSpace(body, valEnd)
		if i >= len(body) {
			return 0, 0, errNotOnePass
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return objStart, i, nil
		default:
			return 0, 0, errNotOnePass
		}
	}
}

// fromLayout is members for a body whose layout a decode step recorded:
// the members are its, the keys are matched to slots as members does. It
// fails, and members walks the body, on a repeated key the step edits or
// a layout whose key does not end where its value begins.
func (w *work) fromLayout(body []byte, l *pipeline.Layout, slots []string) error {
	w.mems = w.mems[:0]
	for _, lm := range l.Members {
		keyStart, valStart := int(lm.Key), int(lm.Value)
		keyEnd := keyEndBefore(body, keyStart, valStart)
		if keyEnd < 0 {
			return errNotOnePass
		}
		raw := body[keyStart+1 : keyEnd-1]
		m := member{keyStart: keyStart, valStart: valStart, valEnd: int(lm.End), slot: -1}
		if s := matchSlot(raw, bytes.IndexByte(raw, '\\') >= 0, slots); s >= 0 {
			if w.state[s].found {
				return errNotOnePass // a repeated key: sjson's first-match rules apply
			}
			w.state[s].found, w.state[s].present = true, true
			w.state[s].val = ref{inBody: true, start: m.valStart, end: m.valEnd}
			m.slot = s
		}
		w.mems = append(w.mems, m)
	}
	return nil
}

// keyEndBefore returns the index after the closing quote of the key that
// starts at keyStart and whose value starts at valStart (the ':' and
// any space between), or -1 when the bytes there are not that.
func keyEndBefore(body []byte, keyStart, valStart int) int {
	i := valStart - 1
	for i > keyStart && isSpace(body[i]) {
		i--
	}
	if i <= keyStart || body[i] != ':' {
		return -1
	}
	i--
	for i > keyStart && isSpace(body[i]) {
		i--
	}
	if i <= keyStart || body[i] != '"' {
		return -1
	}
	return i + 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func matchSlot(raw []byte, escaped bool, slots []string) int {
	k := unsafe.String(unsafe.SliceData(raw), len(raw))
	if escaped {
		k = gjson.Parse(`"` + k + `"`).Str
	}
	for i, s := range slots {
		if s == k {
			return i
		}
	}
	return -1
}

// simulate applies the step's edits to the slots' states, in order.
func (w *work) simulate(ops []op) {
	for _, o := range ops {
		switch o.kind {
		case opSet:
			w.set(o.slot, w.setVals[o.setIndex])
		case opDelete:
			w.del(o.slot)
		case opRename:
			st := &w.state[o.slot]
			if !st.present && st.appended < 0 {
				continue
			}
			v := st.val
			w.del(o.slot)
			w.set(o.to, v)
		}
	}
}

func (w *work) set(slot int, v ref) {
	st := &w.state[slot]
	st.val = v
	if !st.present && st.appended < 0 {
		st.appended = len(w.appended)
		w.appended = append(w.appended, slot)
	}
}

func (w *work) del(slot int) {
	st := &w.state[slot]
	switch {
	case st.present:
		st.present = false
	case st.appended >= 0:
		w.appended[st.appended] = -1
		st.appended = -1
	}
}

// write appends the edited body to out.
func (w *work) write(out, body []byte, slots []string, objStart, objEnd int) []byte {
	out = append(out, body[:objStart+1]...)
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	for _, m := range w.mems {
		if m.slot < 0 {
			sep()
			out = append(out, body[m.keyStart:m.valEnd]...)
			continue
		}
		st := &w.state[m.slot]
		if !st.present {
			continue
		}
		sep()
		out = append(out, body[m.keyStart:m.valStart]...)
		out = w.appendRef(out, body, st.val)
	}
	for _, s := range w.appended {
		if s < 0 {
			continue
		}
		sep()
		out = append(out, '"')
		out = append(out, slots[s]...)
		out = append(out, '"', ':')
		out = w.appendRef(out, body, w.state[s].val)
	}
	out = append(out, '}')
	return append(out, body[objEnd+1:]...)
}

func (w *work) appendRef(out, body []byte, r ref) []byte {
	if r.inBody {
		return append(out, body[r.start:r.end]...)
	}
	return append(out, w.vals[r.start:r.end]...)
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string at p[i] == '"' (or -1)
// and whether it holds escapes.
func skipString(p []byte, i int) (int, bool) {
	escaped := false
	i++
	// Most keys and values are short: look at the first bytes one by
	// one, and search for the closing quote beyond them.
	for end := min(i+24, len(p)); i < end; i++ {
		switch p[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	for i < len(p) {
		j := bytes.IndexByte(p[i:], '"')
		if j < 0 {
			return -1, false
		}
		q := i + j
		bs := 0 // backslashes right before the quote: odd escapes it
		for k := q - 1; k >= i && p[k] == '\\'; k-- {
			bs++
		}
		if !escaped && bytes.IndexByte(p[i:q], '\\') >= 0 {
			escaped = true
		}
		if bs%2 == 0 {
			return q + 1, escaped
		}
		i = q + 1
	}
	return -1, false
}

// skipValue returns the index after the (valid) JSON value at p[i], or -1.
// Containers are skipped by counting brackets: no recursion.
func skipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch p[i] {
	case '"':
		end, _ := skipString(p, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(p); i++ {
			switch p[i] {
			case '"':
				end, _ := skipString(p, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for j := i; j < len(p); j++ {
		switch p[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(p)
}

// appendValue appends v as sjson.SetBytes would write it: strings and
// []byte as JSON strings (encoding/json's escaping when they need any),
// numbers with strconv, times as encoding/json does, anything else
// through encoding/json. Typed: no reflection for these.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case []byte:
		return appendString(b, string(x)), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case nil:
		return append(b, "null"...), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float32:
		return appendFloat(b, float64(x))
	case float64:
		return appendFloat(b, x)
	case time.Time:
		return appendTime(b, x)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}

// appendTime appends t as encoding/json writes a time.Time.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	raw, err := t.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendString appends s as a JSON string the way sjson does: plain
// ASCII as it is, anything else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > 0x7f || c == '"' || c == '\\' {
			raw, _ := json.Marshal(s)
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
