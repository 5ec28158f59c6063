package envelope

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// ReadChecked is pipeline.CheckJSONDepth(body, limit) followed by Read,
// in one scan of body where the two took two (the depth check reads every
// byte, and Read's pass over the top-level keys skips data's value, most
// of the body, byte by byte too). It returns CheckJSONDepth's error (f is
// then left undefined) or nil with f as Read fills it.
//
// The scan takes well-formed envelopes (an object of strings, numbers,
// literals, and objects and arrays skipped as Read skips them) and hands
// anything else to CheckJSONDepth and Read themselves, so it needs to
// agree with them only where it is sure to: FuzzReadChecked holds it equal
// to the two on any input.
func ReadChecked(body string, f *Fields, limit int) error {
	if limit <= 0 {
		limit = defaultLimit
	}
	c := checked{b: body, limit: limit}
	if ok, err := c.read(f, nil); ok {
		return err
	}
	return readSlow(body, f, limit)
}

const defaultLimit = pipeline.DefaultMaxJSONDepth

// readSlow is what ReadChecked stands for: the depth check, then Read.
func readSlow(body string, f *Fields, limit int) error {
	if err := pipeline.CheckJSONDepth(unsafe.Slice(unsafe.StringData(body), len(body)), limit); err != nil {
		return err
	}
	Read(body, f)
	return nil
}

// checked is ReadChecked's scan: its position and the nesting depth there;
// for ReadPaths, how to pick the paths of data to read and whether it did
// (the slots they fill are passed down apart: escape analysis would move
// them to the heap with the body the results point into).
type checked struct {
	b            string
	i            int
	depth, limit int
	pick         func(source, typ string) *PathNode
	walked       bool
}

// key reads an object's key at c.i and the colon after it, up to the
// value; false for a key with escapes (the readers match the unescaped
// key) or anything malformed.
func (c *checked) key() (string, bool) {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return "", false
	}
	ks := c.i + 1
	if !c.str() {
		return "", false
	}
	key := c.b[ks : c.i-1]
	if strings.IndexByte(key, '\\') >= 0 {
		return "", false
	}
	if c.ws(); c.i >= len(c.b) || c.b[c.i] != ':' {
		return "", false
	}
	c.i++
	c.ws()
	return key, true
}

// deep is the error for the bracket at c.i, which went over the limit.
func (c *checked) deep() error {
	return &pipeline.JSONDepthError{Max: c.limit, Offset: c.i, Size: len(c.b)}
}

// read scans the envelope. ok is false when the body is not one it can
// vouch for (the caller then checks and reads it the slow way); with ok,
// err is the depth error or nil, and f is filled as Read fills it.
func (c *checked) read(f *Fields, out []gjson.Result) (ok bool, err error) {
	f.r = [nFields]gjson.Result{}
	c.ws()
	if c.i >= len(c.b) || c.b[c.i] != '{' {
		return false, nil
	}
	if c.depth = 1; c.depth > c.limit {
		return true, c.deep()
	}
	c.i++
	left := 6
	if c.ws(); c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return c.end(left)
	}
	for {
		key, ok := c.key()
		if !ok {
			return false, nil
		}
		vs := c.i
		i := -1
		if left > 0 {
			i = fieldIndex(key)
		}
		var v gjson.Result
		var err error
		if i == iData && !f.r[iData].Exists() && c.walkable(f) {
			ok, err = c.walkData(f, out)
			v = gjson.Result{Type: gjson.JSON, Raw: c.b[vs:c.i]}
		} else {
			v, ok, err = c.value()
		}
		if !ok || err != nil {
			return ok, err
		}
		if i >= 0 {
			if !f.r[i].Exists() {
				v.Index = vs
				f.r[i] = v
				if i < iSystemModifiedAt {
					left--
				}
			}
		}
		more, ok := c.next()
		if !ok {
			return false, nil
		}
		if !more {
			return c.end(left)
		}
	}
}

// next reads what follows an object's member: a ',' and the whitespace
// after it (more is true), or the closing '}' (more is false). ok is false
// for anything else.
func (c *checked) next() (more, ok bool) {
	if c.ws(); c.i >= len(c.b) {
		return false, false
	}
	switch c.b[c.i] {
	case ',':
		c.i++
		c.ws()
		return true, true
	case '}':
		c.i++
		return false, true
	}
	return false, false
}

// end finishes after the envelope's closing brace: only whitespace may
// follow while Read still looks for keys (it would look past the brace);
// the depth check goes on to the end either way.
func (c *checked) end(left int) (bool, error) {
	rest := c.i
	c.ws()
	if c.i == len(c.b) {
		return true, nil
	}
	if left > 0 {
		return false, nil
	}
	c.i, c.depth = rest, 0
	return true, c.tail()
}

// tail is CheckJSONDepth's scan of what follows the envelope.
func (c *checked) tail() error {
	for ; c.i < len(c.b); c.i++ {
		switch c.b[c.i] {
		case '[', '{':
			if c.depth++; c.depth > c.limit {
				return c.deep()
			}
		case ']', '}':
			c.depth = max(c.depth-1, 0)
		case '"':
			c.i = pipeline.SkipJSONString(c.b, c.i+1)
		}
	}
	return nil
}

func fieldIndex(key string) int {
	switch key {
	case ID:
		return iID
	case Source:
		return iSource
	case Type:
		return iType
	case AccountID:
		return iAccountID
	case OccurredAt:
		return iOccurredAt
	case Data:
		return iData
	case SystemModifiedAt:
		return iSystemModifiedAt
	case Key:
		return iKey
	}
	return -1
}

func (c *checked) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// str moves past the string at c.i ('"'); false unless every escape in it
// is one JSON has (then every reader agrees where it ends).
func (c *checked) str() bool {
	i := c.i + 1
	for {
		q := strings.IndexByte(c.b[i:], '"')
		if q < 0 {
			return false
		}
		bs := strings.IndexByte(c.b[i:i+q], '\\')
		if bs < 0 {
			c.i = i + q + 1
			return true
		}
		i += bs + 1 // the byte after the backslash
		if i >= len(c.b) {
			return false
		}
		switch c.b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if i+4 >= len(c.b) || !isHex4(c.b[i+1:i+5]) {
				return false
			}
			i += 5
		default:
			return false
		}
	}
}

func isHex4(s string) bool {
	for _, c := range []byte(s[:4]) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// value moves past the value at c.i and returns it as Read's pass over the
// keys returns it (but for Index, which the caller sets).
func (c *checked) value() (v gjson.Result, ok bool, err error) {
	s := c.i
	if s >= len(c.b) {
		return v, false, nil
	}
	switch ch := c.b[s]; {
	case ch == '"':
		if !c.str() {
			return v, false, nil
		}
		v.Type, v.Raw = gjson.String, c.b[s:c.i]
		if strings.IndexByte(v.Raw, '\\') >= 0 {
			v.Str = gjson.Parse(v.Raw).Str
		} else {
			v.Str = v.Raw[1 : len(v.Raw)-1]
		}
	case ch == '{' || ch == '[':
		if ok, err := c.skip(); !ok || err != nil {
			return v, ok, err
		}
		v.Type, v.Raw = gjson.JSON, c.b[s:c.i]
	case ch == 't' || ch == 'f' || ch == 'n':
		for _, lit := range [...]struct {
			s string
			t gjson.Type
		}{{"true", gjson.True}, {"false", gjson.False}, {"null", gjson.Null}} {
			if strings.HasPrefix(c.b[s:], lit.s) {
				c.i += len(lit.s)
				v.Type, v.Raw = lit.t, lit.s
			}
		}
		if c.i == s || !c.delimited() {
			return v, false, nil
		}
	case ch == '-' || ch >= '0' && ch <= '9':
		if !c.number() || !c.delimited() {
			return v, false, nil
		}
		v.Type, v.Raw = gjson.Number, c.b[s:c.i]
		v.Num, _ = strconv.ParseFloat(v.Raw, 64)
	default:
		return v, false, nil
	}
	return v, true, nil
}

// delimited: the scalar just read ends where Read's reader ends it.
func (c *checked) delimited() bool {
	if c.i == len(c.b) {
		return false
	}
	switch c.b[c.i] {
	case ' ', '\t', '\n', '\r', ',', '}':
		return true
	}
	return false
}

// number moves past -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *checked) number() bool {
	b, i := c.b, c.i
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		if i++; !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	c.i = i
	return true
}

// skipMark marks the bytes skip stops at.
var skipMark = [256]bool{'[': true, '{': true, ']': true, '}': true, '"': true, '(': true, ')': true}

// skip moves past the array or object at c.i, counting depth as
// CheckJSONDepth does and ending where Read's reader ends it: brackets
// outside strings (of either kind: all three count them alike), strings
// ended by their first unescaped quote. It does not validate what is in
// between (neither do those two); parentheses, which Read's reader counts
// as brackets, are left to the slow path.
func (c *checked) skip() (bool, error) {
	base := c.depth
	for ; c.i < len(c.b); c.i++ {
		ch := c.b[c.i]
		if !skipMark[ch] {
			continue
		}
		switch ch {
		case '[', '{':
			if c.depth++; c.depth > c.limit {
				return true, c.deep()
			}
		case ']', '}':
			if c.depth--; c.depth == base {
				c.i++
				return true, nil
			}
		case '"':
			if !c.str() {
				return false, nil
			}
			c.i-- // the loop steps past the closing quote
		default: // '(' or ')'
			return false, nil
		}
	}
	return false, nil
}
