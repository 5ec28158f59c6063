package dedupe

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// refShard is the memory store's contract for one shard, written the
// plain way: a list of entries in mark order, oldest first.
type refShard struct {
	capacity int
	entries  []refEntry
}

type refEntry struct {
	f       fingerprint
	expires int64
	live    bool
}

func (r *refShard) has(f fingerprint, now int64) bool {
	for i := range r.entries {
		e := &r.entries[i]
		if e.live && e.f == f {
			if e.expires > now {
				return true
			}
			e.live = false
			return false
		}
	}
	return false
}

func (r *refShard) put(f fingerprint, expires, now int64) {
	for i := range r.entries {
		if r.entries[i].live && r.entries[i].f == f {
			r.entries[i].live = false
		}
	}
	for len(r.entries) > 0 && (!r.entries[0].live || r.entries[0].expires <= now || len(r.entries) == r.capacity) {
		r.entries = r.entries[1:]
	}
	r.entries = append(r.entries, refEntry{f: f, expires: expires, live: true})
}

func (r *refShard) keys() int {
	n := 0
	for _, e := range r.entries {
		if e.live {
			n++
		}
	}
	return n
}

// checkAgainstModel runs ops (from the fuzzer's bytes) on a store and on
// the model: each op is 4 bytes: kind, key (2 bytes, modulo keys), clock
// step.
func checkAgainstModel(t *testing.T, capacity, keys int, ops []byte) {
	t.Helper()
	clock := time.Unix(1_700_000_000, 0)
	m := newMemoryStore(capacity, 10*time.Second, func() time.Time { return clock })
	per := len(m.shards[0].fps)
	model := map[uint64]*refShard{}
	shard := func(f fingerprint) *refShard {
		r := model[f[0]%memoryShards]
		if r == nil {
			r = &refShard{capacity: per}
			model[f[0]%memoryShards] = r
		}
		return r
	}
	for len(ops) >= 4 {
		kind, key, step := ops[0], int(binary.LittleEndian.Uint16(ops[1:])), ops[3]
		ops = ops[4:]
		clock = clock.Add(time.Duration(step%8) * time.Second)
		k := fmt.Sprintf("k%d", key%keys)
		f := m.fingerprint(k)
		now := clock.UnixNano()
		switch kind % 3 {
		case 0, 1:
			m.mark([]string{k})
			shard(f).put(f, clock.Add(10*time.Second).UnixNano(), now)
		case 2:
			if got, want := m.hasFingerprint(f, now), shard(f).has(f, now); got != want {
				t.Fatalf("has(%s) = %v, the model says %v", k, got, want)
			}
		}
	}
	want := 0
	for _, r := range model {
		want += r.keys()
	}
	if got := m.len(); got != want {
		t.Fatalf("the store holds %d keys, the model %d", got, want)
	}
	// Every key the model holds live must be found by its index, with its
	// expiry; a key only in the model's holes must not (a key marked again
	// is both: a hole and, later, live).
	for sh, r := range model {
		live := map[fingerprint]int64{}
		for _, e := range r.entries {
			if e.live {
				live[e.f] = e.expires
			}
		}
		s := &m.shards[sh]
		for _, e := range r.entries {
			_, pos, ok := s.find(e.f)
			exp, want := live[e.f]
			if ok != want || (ok && s.expires[pos] != exp) {
				t.Fatalf("index has %x: %v, the model says %v", e.f, ok, want)
			}
		}
	}
}

// FuzzMemoryStore: the store's hash seeds are random per run, so which keys
// share a shard differs from run to run; the corpus still drives every
// path (full rings, holes, expiry) and a failure prints the key.
func FuzzMemoryStore(f *testing.F) {
	f.Add(uint8(1), []byte{0, 1, 0, 0, 2, 1, 0, 0, 1, 1, 0, 5, 2, 1, 0, 3})
	f.Add(uint8(64), []byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 1, 2, 1, 0, 7, 2, 2, 0, 0})
	f.Add(uint8(200), []byte{1, 9, 0, 0, 1, 9, 0, 0, 2, 9, 0, 4, 2, 9, 0, 7})
	f.Fuzz(func(t *testing.T, capacity uint8, ops []byte) {
		checkAgainstModel(t, int(capacity)+1, 300, ops)
	})
}

func TestMemoryStore(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	type op struct {
		mark    string        // mark this key
		has     string        // or ask for this key…
		want    bool          // …and expect this
		advance time.Duration // before the op
	}
	tests := []struct {
		name     string
		capacity int // per shard: 64 shards
		ops      []op
	}{
		{"a marked key is held for the window", 64, []op{
			{mark: "a"}, {has: "a", want: true}, {has: "b", want: false},
			{advance: 9 * time.Second, has: "a", want: true},
			{advance: time.Second, has: "a", want: false},
		}},
		{"marking again restarts the window", 64, []op{
			{mark: "a"}, {advance: 8 * time.Second, mark: "a"},
			{advance: 8 * time.Second, has: "a", want: true},
			{advance: 2 * time.Second, has: "a", want: false},
		}},
		{"an expired key found stays forgotten", 64, []op{
			{mark: "a"}, {advance: 11 * time.Second, has: "a", want: false}, {has: "a", want: false},
			{mark: "a"}, {has: "a", want: true},
		}},
		{"one entry per shard: the next key of the shard evicts it", 64 * 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := clock
			m := newMemoryStore(tt.capacity, 10*time.Second, func() time.Time { return now })
			if tt.ops == nil { // the eviction case: two keys of one shard
				a := "a"
				var b string
				for i := 0; b == ""; i++ {
					if k := fmt.Sprintf("b%d", i); m.fingerprint(k)[0]%memoryShards == m.fingerprint(a)[0]%memoryShards {
						b = k
					}
				}
				m.mark([]string{a})
				m.mark([]string{b})
				if m.hasFingerprint(m.fingerprint(a), now.UnixNano()) || !m.hasFingerprint(m.fingerprint(b), now.UnixNano()) {
					t.Fatalf("capacity 1 per shard: want only the newer key %s held", b)
				}
				return
			}
			for i, o := range tt.ops {
				now = now.Add(o.advance)
				if o.mark != "" {
					m.mark([]string{o.mark})
					continue
				}
				if got := m.hasFingerprint(m.fingerprint(o.has), now.UnixNano()); got != o.want {
					t.Fatalf("op %d: has(%s) = %v, want %v", i, o.has, got, o.want)
				}
			}
		})
	}
}

// TestMemoryStoreIndexRuns fills shards to capacity with many keys, so
// probe runs wrap around the index and deletions shift entries back, then
// checks every key still held is found and every evicted one is not.
func TestMemoryStoreIndexRuns(t *testing.T) {
	for _, capacity := range []int{64, 64 * 3, 64 * 100} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			ops := make([]byte, 0, 4*20*capacity)
			for i := range 20 * capacity {
				// Marks (2 of 3 ops) and lookups of keys spread over 3×
				// the capacity, so shards fill, evict and find old keys;
				// the clock moves a second every other op (window 10 s).
				ops = append(ops, byte(i%3), 0, 0, byte(i%2))
				binary.LittleEndian.PutUint16(ops[len(ops)-3:], uint16(i*7919))
			}
			checkAgainstModel(t, capacity, 3*capacity, ops)
		})
	}
}
