package pipeline

import "strings"

// LogSafe wraps err for logs and for errors that leave the process: its
// text has every quoted value elided ("…"), because components quote what
// they failed on and that is payload (decode's `starts "…"`,
// Elasticsearch's `Preview of field's value: '…'`, a rendered collection
// name). errors.Is and errors.As see err unchanged. The full reason goes
// to the dead-letter sink only, with the payload.
func LogSafe(err error) error {
	if err == nil {
		return nil
	}
	return &logSafeError{err: err}
}

type logSafeError struct{ err error }

func (e *logSafeError) Error() string { return ElideQuoted(e.err.Error()) }
func (e *logSafeError) Unwrap() error { return e.err }

// ElideQuoted replaces the text inside "double-quoted" spans (with Go's
// backslash escapes, as %q writes them) and 'single-quoted' ones (an
// apostrophe that opens after a space or bracket, so "can't" stays) with
// "…". An unclosed quote elides to the end.
func ElideQuoted(s string) string {
	if !strings.ContainsAny(s, `"'`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		opens := c == '"' || c == '\'' && (i == 0 || strings.IndexByte(" \t\n([{:=,", s[i-1]) >= 0)
		if !opens {
			b.WriteByte(c)
			continue
		}
		end := closingQuote(s, i+1, c)
		b.WriteByte(c)
		if end > i+1 {
			b.WriteString("…")
		}
		if end < len(s) {
			b.WriteByte(c)
		}
		i = end
	}
	return b.String()
}

// closingQuote is the index of the quote q closing the span that starts
// at i, or len(s).
func closingQuote(s string, i int, q byte) int {
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if q == '"' {
				i++ // an escape: the next byte is content
			}
		case q:
			return i
		}
	}
	return len(s)
}
