package enrich

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/pipeline"
)

// TestStringsWrittenByTheOneRule: enrich writes its strings with
// pipeline.AppendJSONString, the bytes json.Marshal writes. An invalid
// UTF-8 byte in an input string now becomes \ufffd (enrich used to copy it
// raw, leaving invalid UTF-8 in the body); U+2028, <, > and & are now
// escaped (the same JSON value as before).
func TestStringsWrittenByTheOneRule(t *testing.T) {
	tests := []struct{ id, want string }{
		{"e\xff1", `"id":"e\ufffd1"`},
		{"e<&>\u20281", `"id":"e\u003c\u0026\u003e\u20281"`},
		{"e\x01", `"id":"e\u0001"`},
	}
	for _, tt := range tests {
		e := newEnrich(t, Config{})
		idJSON, _ := json.Marshal(tt.id) // the input is valid JSON either way
		if tt.id == "e\xff1" {
			idJSON = []byte("\"e\xff1\"") // a raw invalid byte, as a lax producer writes it
		}
		body := `{"id":` + string(idJSON) + `,"source":"sendgrid","type":"open","data":{"email":"a@b.co","timestamp":1700000000}}`
		ev := &pipeline.Event{ID: "e1", Body: []byte(body)}
		if _, err := e.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(ev.Body, []byte(tt.want)) || !utf8.Valid(ev.Body) || !json.Valid(ev.Body) {
			t.Errorf("id %q: body %s, want it to hold %s and be valid UTF-8 JSON", tt.id, ev.Body, tt.want)
		}
	}
}
