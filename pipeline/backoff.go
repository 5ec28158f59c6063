package pipeline

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff paces the retries of a call that keeps failing (a reader's
// fetch, a poll): Next returns the wait before the next try, the first
// interval, then doubling up to the limit; Reset, after a success, starts
// again from the first. It has no jitter, so waits are predictable in logs and tests (a reader
// retries alone; the runner's retries of a batch do jitter). It is built on
// the runner's backoff library. Not safe for concurrent use: one per
// reader.
type Backoff struct {
	b backoff.ExponentialBackOff
}

// NewBackoff returns a Backoff from first to limit (a limit below first is
// first).
func NewBackoff(first, limit time.Duration) *Backoff {
	b := &Backoff{}
	b.b.InitialInterval = first
	b.b.MaxInterval = max(first, limit)
	b.b.Multiplier = 2
	b.b.RandomizationFactor = 0
	b.b.Reset()
	return b
}

// Next returns the wait before the next try and doubles the one after.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts again from the first interval: call it after a success.
func (b *Backoff) Reset() { b.b.Reset() }
