package dedupe

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"
)

const memoryShards = 64

// memoryStore remembers seen keys in a sharded, fixed-size table. Each
// shard owns a ring of entries in the order they were marked (every key
// has the same window, so mark order is expiry order) and an
// open-addressing index into the ring. Both are allocated once, at
// capacity: when the ring is full its oldest entry makes room, so memory
// stays flat.
//
// It keeps each key's 128-bit fingerprint, not the key: entries then hold
// no pointers, so the garbage collector never scans a million-key window,
// and no key string is retained. Two different keys share a fingerprint
// with probability about n²/2¹²⁹ (10⁻²⁷ for a million keys in the window),
// far below the rate of undetected memory errors; a shared fingerprint
// would drop the second event as a duplicate.
//
// An entry takes 24 bytes in the ring and 4 to 8 in the index (a ring
// position per slot, at most half the slots used): ~32 bytes a key,
// 32 MB for the default million (BenchmarkMemoryStoreFootprint). A key
// marked again, or found expired, leaves a hole in the ring that is
// skipped when the oldest entries reach it; until then it counts against
// the ring's room, so a full ring with holes forgets its oldest key a
// little early (never later: capacity stays a bound).
type memoryStore struct {
	seeds  [2]maphash.Seed
	window time.Duration
	now    func() time.Time
	shards [memoryShards]memShard
}

// fingerprint is a key's two 64-bit hashes under independent seeds: the
// first picks the shard, the second the index slot.
type fingerprint [2]uint64

// hole marks a ring entry whose key is no longer in the index.
const hole = math.MinInt64

type memShard struct {
	mu      sync.Mutex
	fps     []fingerprint // the ring, len = the shard's capacity
	expires []int64       // unix nanoseconds per ring entry; hole when unindexed
	head    int           // oldest ring entry
	used    int           // ring entries from head on, keys and holes
	keys    int           // keys indexed
	index   []int32       // ring position + 1 per slot, 0 when empty (linear probing)
	mask    uint64
}

func newMemoryStore(capacity int, window time.Duration, now func() time.Time) *memoryStore {
	m := &memoryStore{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, window: window, now: now}
	per := max(1, (capacity+memoryShards-1)/memoryShards)
	slots := 1 << bits.Len(uint(2*per-1)) // a power of two ≥ 2×per: probes stay short
	for i := range m.shards {
		s := &m.shards[i]
		s.fps = make([]fingerprint, per)
		s.expires = make([]int64, per)
		s.index = make([]int32, slots)
		s.mask = uint64(slots - 1)
	}
	return m
}

func (m *memoryStore) fingerprint(key string) fingerprint {
	return fingerprint{maphash.String(m.seeds[0], key), maphash.String(m.seeds[1], key)}
}

func (m *memoryStore) shard(f fingerprint) *memShard { return &m.shards[f[0]%memoryShards] }

// hasFingerprint reports whether the key of f was marked within the
// window before now.
func (m *memoryStore) hasFingerprint(f fingerprint, now int64) bool {
	s := m.shard(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, pos, ok := s.find(f)
	if !ok {
		return false
	}
	if s.expires[pos] > now {
		return true
	}
	s.unindex(slot)
	s.expires[pos] = hole
	return false
}

func (m *memoryStore) mark(keys []string) {
	fs := make([]fingerprint, len(keys))
	for i, k := range keys {
		fs[i] = m.fingerprint(k)
	}
	m.markFingerprints(fs)
}

// markFingerprints is mark for keys already fingerprinted.
func (m *memoryStore) markFingerprints(fs []fingerprint) {
	now := m.now()
	expires := now.Add(m.window).UnixNano()
	for _, f := range fs {
		s := m.shard(f)
		s.mu.Lock()
		s.put(f, expires, now.UnixNano())
		s.mu.Unlock()
	}
}

// len is the number of keys held, expired or not (for tests).
func (m *memoryStore) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.keys
		s.mu.Unlock()
	}
	return n
}

// find returns the index slot and ring position of f's entry.
func (s *memShard) find(f fingerprint) (slot uint64, pos int, ok bool) {
	for slot = f[1] & s.mask; ; slot = (slot + 1) & s.mask {
		v := s.index[slot]
		if v == 0 {
			return slot, 0, false
		}
		if s.fps[v-1] == f {
			return slot, int(v - 1), true
		}
	}
}

// put marks f until expires: a key already held moves to the newest end.
// Holes and expired keys at the oldest end are dropped first.
func (s *memShard) put(f fingerprint, expires, now int64) {
	if slot, pos, ok := s.find(f); ok {
		s.unindex(slot)
		s.expires[pos] = hole
	}
	for s.used > 0 && (s.expires[s.head] <= now || s.used == len(s.fps)) {
		s.dropOldest()
	}
	pos := (s.head + s.used) % len(s.fps)
	s.used++
	s.keys++
	s.fps[pos], s.expires[pos] = f, expires
	slot, _, _ := s.find(f)
	s.index[slot] = int32(pos + 1)
}

// dropOldest removes the ring's oldest entry (a hole, or a key that
// expired or must make room).
func (s *memShard) dropOldest() {
	if s.expires[s.head] != hole {
		slot, _, ok := s.find(s.fps[s.head])
		if ok {
			s.unindex(slot)
		}
	}
	s.expires[s.head] = hole
	s.head = (s.head + 1) % len(s.fps)
	s.used--
}

// unindex empties an index slot, moving later entries of its probe run
// back so every key stays reachable from its home slot (no tombstones).
func (s *memShard) unindex(slot uint64) {
	s.keys--
	for j := (slot + 1) & s.mask; s.index[j] != 0; j = (j + 1) & s.mask {
		home := s.fps[s.index[j]-1][1] & s.mask
		// The entry at j may move to slot unless its home lies
		// cyclically in (slot, j].
		if (j-home)&s.mask >= (j-slot)&s.mask {
			s.index[slot] = s.index[j]
			slot = j
		}
	}
	s.index[slot] = 0
}
