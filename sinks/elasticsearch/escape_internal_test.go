package elasticsearch

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/pipeline"
)

// TestActionLineStrings: the action line's _id is escaped by
// pipeline.EscapeJSONStringTail. Before, an id with no '"', '\' or control
// byte was copied raw (invalid UTF-8 and U+2028 included) and any other
// went through json.Marshal (<, >, & as \u003c…); now every id is written
// as json.Marshal writes it: invalid bytes as \ufffd, U+2028 and HTML
// escaped.
func TestActionLineStrings(t *testing.T) {
	s := benchSink(t) // nothing is sent
	tests := []struct{ id, want string }{
		{"plain-1", `"_id":"plain-1"`},
		{"bad\xffutf8", `"_id":"bad\ufffdutf8"`},
		{"sep\u2028", `"_id":"sep\u2028"`},
		{"a<b&c>", `"_id":"a\u003cb\u0026c\u003e"`},
		{"ctl\x01<", `"_id":"ctl\u0001\u003c"`},
	}
	for _, tt := range tests {
		buf, err := s.appendDoc(nil, &pipeline.Event{ID: tt.id, Time: time.Unix(0, 0), Body: []byte(`{"a":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		action, _, _ := bytes.Cut(buf, []byte("\n"))
		if !bytes.Contains(action, []byte(tt.want)) || !json.Valid(action) || !utf8.Valid(action) {
			t.Errorf("id %q: action line %s, want it to hold %s and be valid UTF-8 JSON", tt.id, action, tt.want)
		}
	}
}
