package pipeline

import (
	"math/rand/v2"
	"testing"
)

// TestPlain8: the eight-byte check says "plain" exactly when no byte is
// below 0x20, '"', '\\', '<', '>', '&' or at or above 0x80 (moved here with the JSON
// string writer from the Avro JSON decoder).
func TestPlain8(t *testing.T) {
	special := func(b byte) bool {
		return b < 0x20 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' || b >= 0x80
	}
	for pos := range 8 {
		for b := range 256 {
			w := []byte("abcdefgh")
			w[pos] = byte(b)
			got := plain8(load64(string(w), 0))
			if got == special(byte(b)) {
				t.Fatalf("byte %#x at %d: plain8 %v", b, pos, got)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		w := make([]byte, 8)
		want := true
		for i := range w {
			w[i] = byte(r.UintN(256))
			if r.IntN(2) == 0 {
				w[i] = byte(0x20 + r.UintN(0x60))
			}
			want = want && !special(w[i])
		}
		if plain8(load64(string(w), 0)) != want {
			t.Fatalf("%q: want %v", w, want)
		}
	}
}
