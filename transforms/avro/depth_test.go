package avro

import (
	"strings"
	"testing"
)

// A recursive schema lets the JSON's nesting drive the encoder's
// recursion: a body nested past pipeline.DefaultMaxJSONDepth is an error
// naming the limit, not a stack overflow.
func TestJSONEncoderRefusesDeepNesting(t *testing.T) {
	enc, err := NewJSONEncoder(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null}]}`)
	if err != nil {
		t.Fatal(err)
	}
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"next":`, n) + "null" + strings.Repeat("}", n))
	}
	if _, err := enc.Append(nil, nest(100)); err != nil {
		t.Fatalf("100 levels: %v", err)
	}
	_, err = enc.Append(nil, nest(20000))
	if err == nil || !strings.Contains(err.Error(), "nested deeper than 512") {
		t.Fatalf("20000 levels: %v, want the depth error", err)
	}
}
