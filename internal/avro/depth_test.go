package avro

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
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

// linkedList is a recursive schema whose binary is one byte per level: a
// union index 1 (the next record) per level, then 0 (null).
const linkedList = `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null}]}`

// deepList is the binary of a linked list whose JSON nests levels objects.
func deepList(levels int) []byte {
	return append(bytes.Repeat([]byte{2}, levels-1), 0)
}

// Hostile binary of a recursive schema chooses the decoder's recursion: it
// stops at pipeline.DefaultMaxJSONDepth levels of JSON nesting, which every
// later JSON step accepts, with an error naming the limit.
func TestJSONDecoderRefusesDeepNesting(t *testing.T) {
	dec, err := NewJSONDecoder(linkedList)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		levels int
		ok     bool
	}{
		{1, true},
		{pipeline.DefaultMaxJSONDepth, true},
		{pipeline.DefaultMaxJSONDepth + 1, false},
		{5000, false},
		{1 << 20, false},
	} {
		out, _, err := dec.Append(nil, deepList(c.levels))
		if c.ok {
			if err != nil {
				t.Fatalf("%d levels: %v", c.levels, err)
			}
			if derr := pipeline.CheckJSONDepth(out, pipeline.DefaultMaxJSONDepth); derr != nil {
				t.Fatalf("%d levels: the JSON the decoder made fails the pipeline's depth check: %v", c.levels, derr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "nested deeper than 512") {
			t.Fatalf("%d levels: %v, want the depth error", c.levels, err)
		}
	}
}
