package pipeline

import (
	"fmt"
	"strings"
)

// DefaultMaxJSONDepth is the nesting depth of arrays and objects that JSON
// from outside may have before anything recursive looks at it. Real
// records nest a handful of levels; a line of ten million `[` (which the
// recursive validators and encoders would follow until the stack
// overflows) stops at level 513.
const DefaultMaxJSONDepth = 512

// JSONDepthError is returned by CheckJSONDepth for input nested deeper than
// allowed. It says where, never what: no payload byte goes into the message.
type JSONDepthError struct {
	Max    int // the allowed depth
	Offset int // the byte offset of the bracket that went over it
	Size   int // the length of the input
}

func (e *JSONDepthError) Error() string {
	return fmt.Sprintf("JSON nested deeper than %d levels (at byte %d of %d)", e.Max, e.Offset, e.Size)
}

// CheckJSONDepth returns a *JSONDepthError when b opens more than limit
// arrays or objects inside each other, counting only brackets outside
// strings. It is one iterative scan with no allocation, meant to run
// before recursive parsers (gjson.Valid, encoders walking the tree); it
// does not validate b otherwise, so malformed input is left to the
// parser. limit <= 0 means DefaultMaxJSONDepth.
func CheckJSONDepth(b []byte, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxJSONDepth
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		if !jsonStructural[b[i]] {
			continue
		}
		switch b[i] {
		case '[', '{':
			depth++
			if depth > limit {
				return &JSONDepthError{Max: limit, Offset: i, Size: len(b)}
			}
		case ']', '}':
			// A stray closer is malformed; never let it pay for later
			// openers, so the count stays an upper bound.
			depth = max(depth-1, 0)
		case '"':
			i = SkipJSONString(bytesView(b), i+1)
		}
	}
	return nil
}

// jsonStructural marks the bytes CheckJSONDepth stops at.
var jsonStructural = [256]bool{'[': true, '{': true, ']': true, '}': true, '"': true}

// SkipJSONString returns the index of the quote closing the JSON string
// that starts at i (just after its opening quote), or len(s) when it is not
// closed. It is the one string skipper of the JSON scanners (the depth
// check here, the envelope's one-scan read).
func SkipJSONString(s string, i int) int {
	for {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			return len(s)
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k >= 0 && s[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		i++
	}
}
