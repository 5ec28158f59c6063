package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// DefaultMaxDepth is max_depth when the config leaves it unset.
const DefaultMaxDepth = 512

// errTooDeep is the reason for a payload nested deeper than max_depth.
var errTooDeep = errors.New("nested deeper than max_depth")

// syntaxError is a payload that is not valid JSON, with where it broke.
type syntaxError struct{ off int }

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d", e.off) }

// span is where a value lies in the payload; end is 0 when it was not found.
type span struct{ start, end int }

// strSafe marks the bytes a JSON string may hold without further checks.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanJSON validates p as one JSON value in a single pass, with no
// recursion: nesting is tracked in a bit stack and refused beyond
// maxDepth before it is entered. For each of keys (plain top-level key
// names) the span of its first value in the top-level object is stored
// in spans[i]. The grammar is RFC 8259's, as gjson.ValidBytes checks it
// (strings are not checked for valid UTF-8).
func scanJSON(p []byte, maxDepth int, keys []string, spans []span) error {
	return scan(p, maxDepth, keys, spans, nil)
}

// scan is scanJSON that also appends the top-level members of an object
// to lay when lay is not nil (see layoutOut).
//
// It is one function of ~110 lines on purpose: the value step and the
// close-and-separate step share the depth, the bit stack and the index as
// locals of one loop (object keys are their own function, scanner.key),
// and this scan is a quarter of the engine's CPU (bench/RESULTS.md).
func scan(p []byte, maxDepth int, keys []string, spans []span, lay *layoutOut) error {
	sc := scanner{p: p, keys: keys, spans: spans, capture: -1, lay: lay}
	var small [64]uint64 // one bit per level: 1 = object; 4096 levels
	stack := small[:]
	if maxDepth > 64*64 {
		stack = make([]uint64, maxDepth/64+1)
	}
	depth, inObject := 0, false
	i := 0
	var err error
	for {
		// A value is expected at i.
		i = skipSpace(p, i)
		if i >= len(p) {
			return &syntaxError{i}
		}
		switch c := p[i]; c {
		case '{', '[':
			if depth >= maxDepth {
				return errTooDeep
			}
			w, b := depth/64, uint64(1)<<(depth%64)
			depth++
			at := i
			i = skipSpace(p, i+1)
			if c == '{' {
				stack[w] |= b
				inObject = true
				if depth == 1 && lay != nil {
					lay.open = at
				}
				if i < len(p) && p[i] == '}' {
					if depth == 1 && lay != nil {
						lay.close = i
					}
					i, depth = i+1, depth-1
					inObject = depth > 0 && stack[(depth-1)/64]&(uint64(1)<<((depth-1)%64)) != 0
					break // an empty object: a value ended
				}
				if i, err = sc.key(i, depth); err != nil {
					return err
				}
				continue
			}
			stack[w] &^= b
			inObject = false
			if i < len(p) && p[i] == ']' {
				i, depth = i+1, depth-1
				inObject = depth > 0 && stack[(depth-1)/64]&(uint64(1)<<((depth-1)%64)) != 0
				break // an empty array: a value ended
			}
			continue
		case '"':
			if i, _, err = scanString(p, i); err != nil {
				return err
			}
		case 't':
			i = literal(p, i, "true")
		case 'f':
			i = literal(p, i, "false")
		case 'n':
			i = literal(p, i, "null")
		default:
			i = number(p, i)
		}
		if i < 0 {
			return &syntaxError{-i - 1}
		}
		// A value ended at i: close containers up to the next value or
		// the end.
		for {
			if depth == 1 {
				sc.valueEnd(i)
			}
			if depth == 0 {
				if i = skipSpace(p, i); i != len(p) {
					return &syntaxError{i}
				}
				return nil
			}
			i = skipSpace(p, i)
			if i >= len(p) {
				return &syntaxError{i}
			}
			c := p[i]
			if c == ',' {
				i++
				if inObject {
					if i, err = sc.key(skipSpace(p, i), depth); err != nil {
						return err
					}
				}
				break
			}
			if c == '}' && inObject || c == ']' && !inObject {
				if depth == 1 && lay != nil {
					lay.close = i
				}
				i++
				depth--
				inObject = depth > 0 && stack[(depth-1)/64]&(uint64(1)<<((depth-1)%64)) != 0
				continue
			}
			return &syntaxError{i}
		}
	}
}

// scanner is what key parsing needs: the payload and the top-level keys
// whose values are wanted.
type scanner struct {
	p        []byte
	keys     []string
	spans    []span
	capture  int // the key whose value is being scanned, or -1
	capStart int
	lay      *layoutOut
}

// layoutOut collects the layout of a top-level object: its members are
// appended to mems after base (up to pipeline.MaxLayoutMembers of them,
// then over is set), open and close are the offsets of its braces. One
// layoutOut serves a batch: mems holds every event's members in turn.
type layoutOut struct {
	mems        []pipeline.Member
	base        int
	open, close int
	over        bool
}

// start readies l for the next payload.
func (l *layoutOut) start() {
	l.base, l.open, l.close, l.over = len(l.mems), -1, -1, false
}

// valueEnd notes that a top-level value ended at i: the span of a wanted
// key's value, the end of a member of the layout.
func (sc *scanner) valueEnd(i int) {
	if sc.capture >= 0 {
		sc.spans[sc.capture] = span{sc.capStart, i} // before the space after it
		sc.capture = -1
	}
	if l := sc.lay; l != nil && !l.over && len(l.mems) > l.base {
		l.mems[len(l.mems)-1].End = uint32(i)
	}
}

// member starts a member of the layout: its key's quote at key, its value at value.
func (l *layoutOut) member(key, value int) {
	if l.over {
		return
	}
	if len(l.mems)-l.base >= pipeline.MaxLayoutMembers {
		l.over = true
		return
	}
	l.mems = append(l.mems, pipeline.Member{Key: uint32(key), Value: uint32(value)})
}

// key scans `"key" :` at i in an object at depth and returns the index
// where its value starts.
func (sc *scanner) key(i, depth int) (int, error) {
	p := sc.p
	if i >= len(p) || p[i] != '"' {
		return 0, &syntaxError{i}
	}
	start := i
	i, escaped, err := scanString(p, i)
	if err != nil {
		return 0, err
	}
	if depth == 1 && len(sc.keys) > 0 {
		sc.capture = matchKey(p[start+1:i-1], escaped, sc.keys, sc.spans)
	}
	i = skipSpace(p, i)
	if i >= len(p) || p[i] != ':' {
		return 0, &syntaxError{i}
	}
	i = skipSpace(p, i+1)
	if depth == 1 {
		sc.capStart = i
		if sc.lay != nil {
			sc.lay.member(start, i)
		}
	}
	return i, nil
}

// matchKey returns the index of the first key equal to raw (a key's bytes
// between its quotes) whose value was not found yet, or -1.
func matchKey(raw []byte, escaped bool, keys []string, spans []span) int {
	k := unsafe.String(unsafe.SliceData(raw), len(raw))
	if escaped {
		k = gjson.Parse(`"` + k + `"`).Str
	}
	for j, want := range keys {
		if spans[j].end == 0 && k == want {
			return j
		}
	}
	return -1
}

func skipSpace(p []byte, i int) int {
	if i < len(p) && p[i] > ' ' {
		return i
	}
	for i < len(p) {
		switch p[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	return i
}

// scanString checks the string starting at p[i] == '"' and returns the
// index after its closing quote, and whether it holds escapes.
func scanString(p []byte, i int) (int, bool, error) {
	escaped := false
	i++
	for {
		// Eight bytes at a time while none of them needs a look, then
		// byte by byte up to the one that does.
		for i+8 <= len(p) && !special8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
		}
		for i < len(p) && strSafe[p[i]] {
			i++
		}
		if i >= len(p) {
			return 0, false, &syntaxError{i}
		}
		switch c := p[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(p) {
				return 0, false, &syntaxError{i}
			}
			switch p[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p) {
					return 0, false, &syntaxError{i}
				}
				for _, h := range p[i+1 : i+5] {
					if !isHex(h) {
						return 0, false, &syntaxError{i}
					}
				}
				i += 4
			default:
				return 0, false, &syntaxError{i}
			}
			i++
		default: // a control character
			return 0, false, &syntaxError{i}
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 reports whether any of the eight bytes of x is a control
// character, '"' or '\\' (SWAR: each test sets a byte's high bit when the
// byte matches; bytes from 0x80 up never match).
func special8(x uint64) bool {
	lt20 := (x - ones*0x20) &^ x
	q := x ^ ones*'"'
	q = (q - ones) &^ q
	bs := x ^ ones*'\\'
	bs = (bs - ones) &^ bs
	return (lt20|q|bs)&highs != 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// literal returns the index after lit at p[i], or -(i+1) when it is not there.
func literal(p []byte, i int, lit string) int {
	if len(p)-i < len(lit) || string(p[i:i+len(lit)]) != lit {
		return -(i + 1)
	}
	return i + len(lit)
}

// number returns the index after the number at p[i], or -(off+1) for the
// offset where it is malformed.
func number(p []byte, i int) int {
	if i < len(p) && p[i] == '-' {
		i++
	}
	switch {
	case i >= len(p):
		return -(i + 1)
	case p[i] == '0':
		i++
	case p[i] >= '1' && p[i] <= '9':
		i = digits(p, i)
	default:
		return -(i + 1)
	}
	if i < len(p) && p[i] == '.' {
		if i+1 >= len(p) || !isDigit(p[i+1]) {
			return -(i + 2)
		}
		i = digits(p, i+1)
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		if i >= len(p) || !isDigit(p[i]) {
			return -(i + 1)
		}
		i = digits(p, i)
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(p []byte, i int) int {
	for i < len(p) && isDigit(p[i]) {
		i++
	}
	return i
}
