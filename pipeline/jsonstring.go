package pipeline

import (
	"unicode/utf8"
	"unsafe"
)

// JSON strings: the one writer every component uses.
//
// The rule, for every byte of the input:
//   - '"' and '\' are escaped as \" and \\; '<', '>' and '&' as \u003c,
//     \u003e and \u0026;
//   - \b, \f, \n, \r and \t are written in their short forms, every other
//     byte below 0x20 as \u00XX;
//   - U+2028 and U+2029 are written as \u2028 and \u2029 (JavaScript reads
//     them as line ends);
//   - each byte that does not start a valid UTF-8 sequence (a stray
//     continuation byte, a truncated or overlong sequence, a surrogate, a
//     code point over U+10FFFF) is replaced by U+FFFD, written \ufffd;
//   - everything else is copied as it is.
//
// This is byte for byte what json.Marshal writes for the string, so a
// component switching to it from encoding/json changes no byte: the output
// is always valid JSON and valid UTF-8. (The HTML escapes are kept for
// that reason: the event envelope has always been written this way.)
// Valid input with nothing to escape is copied in one append, without
// allocating.

// AppendJSONString appends s to dst as a JSON string, quotes included, by
// the rule above.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONText(dst, s)
	return append(dst, '"')
}

// AppendJSONStringBytes is AppendJSONString for a []byte. s must not
// overlap dst's spare capacity (EscapeJSONStringTail is for that).
func AppendJSONStringBytes(dst, s []byte) []byte {
	dst = append(dst, '"')
	dst = appendJSONText(dst, bytesView(s))
	return append(dst, '"')
}

// bytesView reads b as a string without copying, for the length of a call
// that neither keeps the string nor lets b change under it.
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// EscapeJSONStringTail rewrites buf[start:] in place into the text of a JSON
// string (no quotes), by the rule above, and returns the buffer. For a
// value rendered straight into a buffer between quotes already written
// (an id, an index name): when nothing needs escaping it costs one scan
// and no allocation.
func EscapeJSONStringTail(buf []byte, start int) []byte {
	n := plainJSONPrefix(bytesView(buf[start:]))
	if n == len(buf)-start {
		return buf
	}
	rest := string(buf[start+n:]) // a copy: the escaped text overwrites it
	return appendJSONText(buf[:start+n], rest)
}

const jsonHex = "0123456789abcdef"

// jsonSafe reports whether an ASCII byte is copied as it is.
func jsonSafe(b byte) bool {
	return b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
}

// appendJSONText appends the text of a JSON string for s (no quotes).
func appendJSONText(dst []byte, s string) []byte {
	i := plainJSONPrefix(s)
	if i == len(s) {
		return append(dst, s...)
	}
	start := 0 // s[start:i] is not copied yet
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe(b) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendJSONEscape(dst, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			switch r {
			case utf8.RuneError:
				dst = append(dst, `\ufffd`...)
			default:
				dst = append(dst, `\u202`...)
				dst = append(dst, jsonHex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// plainJSONPrefix returns the length of s's longest prefix that is copied
// as it is: safe ASCII and valid UTF-8 other than U+2028 and U+2029.
func plainJSONPrefix(s string) int {
	i := 0
	for i < len(s) {
		// Eight plain ASCII bytes at a time.
		// (The inline test skips the call where text is not ASCII.)
		for i+8 <= len(s) {
			if x := load64(s, i); x&0x8080808080808080 != 0 || !plain8(x) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if !jsonSafe(b) {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return i
		}
		i += size
	}
	return len(s)
}

// load64 reads s[i:i+8] little-endian.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// plain8 reports whether none of the eight bytes in x needs escaping or
// UTF-8 checking: none is below 0x20, '"', '\\', '<', '>', '&' or above
// 0x7f. (A false "no" only sends the bytes down the byte-by-byte path.)
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (x&highs)|((x-0x20*ones) & ^x & highs)|hasZero(x^('"'*ones))|hasZero(x^('\\'*ones))|
		hasZero(x^('<'*ones))|hasZero(x^('>'*ones))|hasZero(x^('&'*ones)) == 0
}

func appendJSONEscape(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return append(dst, '\\', 'u', '0', '0', jsonHex[b>>4], jsonHex[b&0xf])
}
