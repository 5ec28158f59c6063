package pipeline

import (
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Paths address fields of Body with dots between object keys and array
// indexes ("data.email", "attributes.tags.0"), as gjson and sjson read them.

// Get returns the value at path in the event's body; the result's Exists
// is false when the body has no such field or was not decoded yet. It does
// not allocate for scalar values.
func (e *Event) Get(path string) gjson.Result {
	if e.Body == nil {
		return gjson.Result{}
	}
	return gjson.GetBytes(e.Body, path)
}

// Set stores value (any JSON-marshalable value) at path, creating objects
// on the way. It fails if the body was not decoded yet.
func (e *Event) Set(path string, value any) error {
	if e.Body == nil {
		return fmt.Errorf("set %q: event %s has no decoded body (add a decode step first)", path, e.ID)
	}
	e.layout = nil // the edit may write in place
	b, err := sjson.SetBytesOptions(e.ownBody(), path, value, &sjson.Options{ReplaceInPlace: true})
	if err != nil {
		return fmt.Errorf("set %q on event %s: %w", path, e.ID, err)
	}
	e.Body = b
	return nil
}

// SetRaw stores raw JSON at path.
func (e *Event) SetRaw(path string, raw []byte) error {
	if e.Body == nil {
		return fmt.Errorf("set %q: event %s has no decoded body (add a decode step first)", path, e.ID)
	}
	e.layout = nil // the edit may write in place
	b, err := sjson.SetRawBytesOptions(e.ownBody(), path, raw, &sjson.Options{ReplaceInPlace: true})
	if err != nil {
		return fmt.Errorf("set %q on event %s: %w", path, e.ID, err)
	}
	e.Body = b
	return nil
}

// Delete removes the field at path; a missing field is not an error.
func (e *Event) Delete(path string) error {
	if e.Body == nil {
		return nil
	}
	e.layout = nil // the edit may write in place
	b, err := sjson.DeleteBytes(e.ownBody(), path)
	if err != nil {
		return fmt.Errorf("delete %q on event %s: %w", path, e.ID, err)
	}
	e.Body = b
	return nil
}

// ownBody makes sure edits never write through to Payload, which a decode
// step may have shared with Body to save a copy: Payload must stay what
// arrived. The copy gets headroom so the edits that follow append in place.
func (e *Event) ownBody() []byte {
	if sameBacking(e.Body, e.Payload) {
		b := make([]byte, len(e.Body), len(e.Body)+len(e.Body)/4+64)
		copy(b, e.Body)
		e.Body = b
	}
	return e.Body
}

// IsTopLevelKey reports whether path, read as a gjson path by Get, names
// one member of the top-level object by its literal name: not empty, and
// only ASCII letters, digits, '_' and '-' (no '.', '*', '?', '|', '#', '@'
// or escapes). A transform may then find the member with the body's
// Layout instead of walking the body. For Set and Delete (sjson) a leading
// digit or '-' may also mean an array index or an append: check that too
// before editing by the name alone.
func IsTopLevelKey(path string) bool {
	if path == "" {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
