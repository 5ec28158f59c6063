package avro

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/sluicehq/sluice/pipeline"
)

// appendFloat renders a float as goavro does: NaN as null, infinities as
// ±1e999, the shortest representation otherwise.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "null"...)
	case math.IsInf(f, 1):
		return append(dst, "1e999"...)
	case math.IsInf(f, -1):
		return append(dst, "-1e999"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendByteString appends bytes or fixed as goavro renders them: a JSON
// string of one code point per byte (U+0000–U+00FF). An ASCII byte is
// written by pipeline's string rule.
func appendByteString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, b := range s {
		if b >= 0x20 && b < utf8.RuneSelf && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
			continue
		}
		dst = append(dst, s[start:i]...)
		if b < utf8.RuneSelf {
			at := len(dst)
			// One byte: its escape, and no allocation.
			dst = pipeline.EscapeJSONStringTail(append(dst, b), at)
		} else {
			dst = append(dst, 0xc0|b>>6, 0x80|b&0x3f)
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
