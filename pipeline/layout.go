package pipeline

import (
	"math"
	"unsafe"
)

// Member is where one top-level member of an event's JSON object Body
// lies, as byte offsets into Body: Key is the key's opening quote, Value
// the first byte of its value, End one past the value's last byte.
type Member struct{ Key, Value, End uint32 }

// MaxLayoutMembers bounds a layout: a body with more top-level members
// gets none (a layout costs 12 bytes per member, and a small body of many
// tiny members must not cost several times its size).
const MaxLayoutMembers = 256

// Layout is where the top-level members of an event's Body lie, as a step
// that parsed the body found them (decode's validating scan), so a later
// step (map) can edit the body without walking it again.
//
// A layout belongs to one Body. Event.SetLayout records which (the body's
// first byte and its length) and checks the offsets against it; from then
// on Event.Layout returns it only while Body is still that slice:
// assigning another slice to Body drops it, and so do Set, SetRaw and
// Delete. Body's bytes are never changed in place otherwise (they may be
// Payload's, which is never rewritten); a step that does change them in
// place must call ClearLayout, or a later step would read a stale layout.
//
// The layout's memory is the step's that made it (decode writes a batch's
// layouts into arrays made for that batch); it is read-only once set.
type Layout struct {
	// Open and Close are the offsets of the object's '{' and '}'.
	Open, Close uint32
	// Members are the object's members in body order (a repeated key
	// appears once per occurrence).
	Members []Member

	body *byte // the Body it describes: its first byte and length
	n    int
}

// SetLayout records l as the layout of the event's current Body and
// reports whether it took it: a layout whose offsets do not fit the body
// (out of order, out of bounds, not at a '{', '}' or a key's quote) is
// refused and the event is left with none. The checks are cheap; they do
// not re-parse the body.
func (e *Event) SetLayout(l *Layout) bool {
	e.layout = nil
	if l == nil || len(e.Body) == 0 || len(e.Body) > math.MaxUint32 || len(l.Members) > MaxLayoutMembers || !l.fits(e.Body) {
		return false
	}
	l.body, l.n = unsafe.SliceData(e.Body), len(e.Body)
	e.layout = l
	return true
}

// Layout returns the layout of the event's Body, or nil when none was
// recorded for the Body it has now.
func (e *Event) Layout() *Layout {
	l := e.layout
	if l == nil || len(e.Body) != l.n || unsafe.SliceData(e.Body) != l.body {
		return nil
	}
	return l
}

// ClearLayout drops the event's layout: for a step that changed Body's
// bytes in place.
func (e *Event) ClearLayout() { e.layout = nil }

// fits checks l's offsets against body.
func (l *Layout) fits(body []byte) bool {
	n := uint32(len(body))
	if l.Open >= l.Close || l.Close >= n || body[l.Open] != '{' || body[l.Close] != '}' {
		return false
	}
	prev := l.Open + 1
	for _, m := range l.Members {
		if m.Key < prev || m.Key+2 > m.Value || m.Value >= m.End || m.End > l.Close || body[m.Key] != '"' {
			return false
		}
		prev = m.End
	}
	return true
}

// LayoutReader is implemented by a transform that uses the layouts an
// earlier step recorded (Event.Layout); ReadsLayouts reports whether this
// one does, as configured.
type LayoutReader interface{ ReadsLayouts() bool }

// LayoutWriter is implemented by a transform that can record layouts as a
// by-product of parsing bodies. Build calls WriteLayouts once, before the
// pipeline runs: true when a later transform is a LayoutReader that reads
// them, false otherwise, so no step pays for layouts nobody reads. A
// writer that is never told (used outside Build) records them.
type LayoutWriter interface{ WriteLayouts(on bool) }

// wireLayouts tells each LayoutWriter among ts whether a later transform
// reads layouts.
func wireLayouts(ts []stage[Transform]) {
	for i, st := range ts {
		w, ok := st.c.(LayoutWriter)
		if !ok {
			continue
		}
		want := false
		for _, later := range ts[i+1:] {
			if r, ok := later.c.(LayoutReader); ok && r.ReadsLayouts() {
				want = true
				break
			}
		}
		w.WriteLayouts(want)
	}
}
