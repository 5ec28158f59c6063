package enrich

// normalize.go normalizes what enrich copies: email addresses, hosts, lists
// of an array's fields.

import (
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// appendEmail appends the normalized address: trimmed, lowercased, and
// without +tag when strip is set. Only ASCII letters are lowercased.
func appendEmail(buf []byte, s string, strip bool) []byte {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strip && at > 0 && i < at && c == '+' {
			i = at - 1
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, `\u00`...)
			buf = append(buf, hex[c>>4], hex[c&15])
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// appendEach appends the JSON array of field f of every element of arr
// (gjson's "arr.#.f"), without building it as a string first. Elements
// without the field are left out.
func appendEach(buf []byte, arr gjson.Result, f string) []byte {
	buf = append(buf, '[')
	n := 0
	arr.ForEach(func(_, el gjson.Result) bool {
		if v := el.Get(f); v.Exists() && v.Type != gjson.Null {
			if n > 0 {
				buf = append(buf, ',')
			}
			n++
			buf = append(buf, v.Raw...)
		}
		return true
	})
	return append(buf, ']')
}

// appendHost appends the host of a domain or web site, ASCII-lowercased,
// without scheme, "www.", port, path or trailing dot:
// "https://www.Acme.com/about" → "acme.com". It appends nothing when the
// rest is not a host name (letters, digits, '-', '.', '_' or non-ASCII).
func appendHost(buf []byte, s string) []byte {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if len(s) > 4 && strings.EqualFold(s[:4], "www.") {
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 { // an internationalized name: whole runes, lowercased
			if !utf8.ValidString(s) {
				return buf
			}
			s = strings.ToLower(s)
			break
		}
	}
	start := len(buf)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c >= 0x80:
		default:
			return buf[:start]
		}
		buf = append(buf, c)
	}
	return buf
}

func lastAt(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '@' {
			return i
		}
	}
	return -1
}
