// Package ackorder tracks which position of an ordered stream (a Kafka
// partition, a Kinesis shard) may be checkpointed: batches are acked in any
// order, but the checkpoint only moves over a contiguous prefix of acked
// batches, and never past a failed one.
package ackorder

import "sync"

// Tracker is the ack state of one ordered stream. P is a position: the
// offset to commit (Kafka) or the sequence number to checkpoint (Kinesis).
type Tracker[P any] struct {
	mu        sync.Mutex
	pending   []*Span[P] // in read order
	mark      P          // position after the acked prefix
	has       bool       // mark is known
	version   uint64     // bumped whenever mark moves
	committed uint64     // version of the last checkpoint written
	inflight  int
}

// Span is one batch handed to the pipeline.
type Span[P any] struct {
	mark    P // where the stream stands once this span and all before are acked
	records int
	done    bool
	failed  bool
}

// New starts at start (the last checkpoint) when has is true, or with no
// position yet. Either way there is nothing to checkpoint until an ack.
func New[P any](start P, has bool) *Tracker[P] {
	return &Tracker[P]{mark: start, has: has}
}

// Add records a batch of records, in read order; mark is the position to
// checkpoint once it and every batch before it are acked.
func (t *Tracker[P]) Add(mark P, records int) *Span[P] {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &Span[P]{mark: mark, records: records}
	t.pending = append(t.pending, s)
	t.inflight += records
	return s
}

// Ack settles a span. An error marks it failed for the tracker's life: the
// pipeline acks with an error only when it is stopping, and the records
// will be read again from the last checkpoint.
func (t *Tracker[P]) Ack(s *Span[P], err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.done || s.failed {
		return
	}
	t.inflight -= s.records
	if err != nil {
		s.failed = true
		return
	}
	s.done = true
	for len(t.pending) > 0 && t.pending[0].done {
		t.mark, t.has = t.pending[0].mark, true
		t.version++
		t.pending[0] = nil
		t.pending = t.pending[1:]
	}
}

// ToCommit returns the position to checkpoint, and a token for Committed,
// when it moved since the last checkpoint written.
func (t *Tracker[P]) ToCommit() (P, uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mark, t.version, t.has && t.version > t.committed
}

// Committed records that the position of token was checkpointed.
func (t *Tracker[P]) Committed(token uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.committed = max(t.committed, token)
}

// Position is where the acked prefix ends, and whether it is known.
func (t *Tracker[P]) Position() (P, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mark, t.has
}

// Settled reports whether every span added was acked successfully.
func (t *Tracker[P]) Settled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) == 0
}

// InFlight is the number of records handed out and not yet acked.
func (t *Tracker[P]) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inflight
}
