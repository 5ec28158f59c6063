package dedupe

import (
	"hash/maphash"
	"sync"
	"time"
)

const memoryShards = 64

// memoryStore remembers seen keys in a sharded, fixed-size table: each
// shard owns a preallocated slab of entries linked in insertion order (every
// key has the same window, so insertion order is expiry order). When a shard
// is full its oldest entry is reused, so memory stays flat at capacity.
//
// It keeps each key's 128-bit fingerprint, not the key: entries then hold
// no pointers, so the garbage collector never scans a million-key window,
// and no key string is retained. Two different keys share a fingerprint
// with probability about n²/2¹²⁹ (10⁻²⁷ for a million keys in the window),
// far below the rate of undetected memory errors; a shared fingerprint
// would drop the second event as a duplicate.
type memoryStore struct {
	seeds  [2]maphash.Seed
	window time.Duration
	now    func() time.Time
	shards [memoryShards]memShard
}

// fingerprint is a key's two 64-bit hashes under independent seeds.
type fingerprint [2]uint64

type memShard struct {
	mu      sync.Mutex
	index   map[fingerprint]int32
	entries []memEntry // the slab; len grows to cap once, then entries are reused
	head    int32      // oldest, -1 when empty
	tail    int32      // newest
	free    int32      // free list of removed entries, linked by next
}

type memEntry struct {
	key        fingerprint
	expires    int64 // unix nanoseconds
	prev, next int32
}

func newMemoryStore(capacity int, window time.Duration, now func() time.Time) *memoryStore {
	m := &memoryStore{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, window: window, now: now}
	per := (capacity + memoryShards - 1) / memoryShards
	if per < 1 {
		per = 1
	}
	for i := range m.shards {
		s := &m.shards[i]
		s.index = make(map[fingerprint]int32, per)
		s.entries = make([]memEntry, 0, per)
		s.head, s.tail, s.free = -1, -1, -1
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
	j, ok := s.index[f]
	if !ok {
		return false
	}
	if s.entries[j].expires > now {
		return true
	}
	s.remove(j)
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
	expires := m.now().Add(m.window).UnixNano()
	for _, f := range fs {
		s := m.shard(f)
		s.mu.Lock()
		s.put(f, expires)
		s.mu.Unlock()
	}
}

// len is the number of keys held, expired or not (for tests).
func (m *memoryStore) len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

func (s *memShard) put(key fingerprint, expires int64) {
	if j, ok := s.index[key]; ok {
		s.unlink(j)
		s.entries[j].expires = expires
		s.pushBack(j)
		return
	}
	var j int32
	switch {
	case len(s.entries) < cap(s.entries):
		s.entries = append(s.entries, memEntry{})
		j = int32(len(s.entries) - 1)
	case s.free >= 0:
		j = s.free
		s.free = s.entries[j].next
	default:
		j = s.head // full: evict the oldest
		delete(s.index, s.entries[j].key)
		s.unlink(j)
	}
	s.entries[j] = memEntry{key: key, expires: expires, prev: -1, next: -1}
	s.index[key] = j
	s.pushBack(j)
}

func (s *memShard) remove(j int32) {
	delete(s.index, s.entries[j].key)
	s.unlink(j)
	s.entries[j] = memEntry{prev: -1, next: s.free}
	s.free = j
}

func (s *memShard) unlink(j int32) {
	e := &s.entries[j]
	if e.prev >= 0 {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *memShard) pushBack(j int32) {
	e := &s.entries[j]
	e.prev, e.next = s.tail, -1
	if s.tail >= 0 {
		s.entries[s.tail].next = j
	} else {
		s.head = j
	}
	s.tail = j
}
