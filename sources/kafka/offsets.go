package kafka

import "sync"

// offsetTracker keeps, for one partition, the offset below which every
// record is acked: the only offset that may be committed. Batches are
// acked in any order (they are spread over lanes); the watermark moves only
// over a contiguous prefix of acked batches, and never past a failed one.
type offsetTracker struct {
	mu        sync.Mutex
	pending   []*span // in fetch order
	watermark int64   // next offset to consume after the acked prefix; -1 unknown
	committed int64   // last watermark the broker accepted; -1 none
	inflight  int     // records handed out and not yet acked
	stuck     bool    // a batch failed: the watermark cannot pass it
}

type span struct {
	first, next int64 // [first, next)
	records     int
	done        bool
	failed      bool
}

// newOffsetTracker starts at the partition's committed offset, or at -1
// when the group has none yet (earliest/latest: the first batch fixes it).
// Either way there is nothing to commit until a batch is acked.
func newOffsetTracker(start int64) *offsetTracker {
	if start < 0 {
		start = -1
	}
	return &offsetTracker{watermark: start, committed: start}
}

// add records a fetched batch of records covering [first, next).
func (t *offsetTracker) add(first, next int64, records int) *span {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &span{first: first, next: next, records: records}
	if t.watermark < 0 && len(t.pending) == 0 {
		t.watermark, t.committed = first, first
	}
	t.pending = append(t.pending, s)
	t.inflight += records
	return s
}

// ack settles a span. An error marks it failed for good in this tracker's
// life: the pipeline only acks with an error when it is stopping, and the
// records will be read again from the committed offset.
func (t *offsetTracker) ack(s *span, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.done || s.failed {
		return
	}
	t.inflight -= s.records
	if err != nil {
		s.failed = true
		t.stuck = true
		return
	}
	s.done = true
	for len(t.pending) > 0 && t.pending[0].done {
		t.watermark = t.pending[0].next
		t.pending[0] = nil
		t.pending = t.pending[1:]
	}
}

// toCommit returns the watermark when it moved past the last commit.
func (t *offsetTracker) toCommit() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.watermark, t.watermark >= 0 && t.watermark > t.committed
}

// committedAt records a successful commit of offset.
func (t *offsetTracker) committedAt(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if offset > t.committed {
		t.committed = offset
	}
}

// inFlight is the number of records handed out and not yet acked.
func (t *offsetTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inflight
}

func (t *offsetTracker) committedOffset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed
}
