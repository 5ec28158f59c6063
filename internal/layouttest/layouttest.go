// Package layouttest computes the reference layout of a JSON object body
// (pipeline.Layout), independently of decode's scan, for tests and fuzzers.
package layouttest

import (
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// Of returns the layout of body as gjson finds it, and false when body is
// not a valid JSON object.
func Of(body []byte) (pipeline.Layout, bool) {
	var l pipeline.Layout
	if !gjson.ValidBytes(body) {
		return l, false
	}
	open, close := -1, -1
	for i, c := range body {
		if c > ' ' {
			open = i
			break
		}
	}
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] > ' ' {
			close = i
			break
		}
	}
	if open < 0 || body[open] != '{' || body[close] != '}' {
		return l, false
	}
	l.Open, l.Close = uint32(open), uint32(close)
	// Parsed from the object's own bytes, so every index is relative to
	// open; gjson gives each key's quote and each value's start.
	gjson.ParseBytes(body[open : close+1]).ForEach(func(k, v gjson.Result) bool {
		l.Members = append(l.Members, pipeline.Member{
			Key:   uint32(open + k.Index),
			Value: uint32(open + v.Index),
			End:   uint32(open + v.Index + len(v.Raw)),
		})
		return true
	})
	return l, true
}

// Equal reports whether two layouts have the same offsets.
func Equal(a, b *pipeline.Layout) bool {
	if a.Open != b.Open || a.Close != b.Close || len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		if a.Members[i] != b.Members[i] {
			return false
		}
	}
	return true
}
