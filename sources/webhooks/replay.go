package webhooks

import (
	"sync"
	"time"
)

// replaySet remembers Mailgun tokens until they expire, bounded in size.
// A token is reserved while its request is processed and released if the
// request failed, so the provider's retry of a failed request is not
// mistaken for a replay. It is per process: replicas do not share it.
type replaySet struct {
	mu        sync.Mutex
	tokens    map[string]time.Time // token -> when it may be forgotten
	capacity  int
	lastSweep time.Time
}

func newReplaySet(capacity int) *replaySet {
	return &replaySet{tokens: map[string]time.Time{}, capacity: capacity}
}

type reserveResult int

const (
	reserved reserveResult = iota
	replayed
	replayFull
)

// reserve records token until expires, unless it is already known.
func (r *replaySet) reserve(token string, expires, now time.Time) reserveResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if exp, ok := r.tokens[token]; ok && now.Before(exp) {
		return replayed
	}
	if len(r.tokens) >= r.capacity || now.Sub(r.lastSweep) >= 10*time.Second {
		if now.Sub(r.lastSweep) >= time.Second {
			r.sweep(now)
		}
		if len(r.tokens) >= r.capacity {
			return replayFull
		}
	}
	r.tokens[token] = expires
	return reserved
}

// release forgets a token whose request was not durably taken.
func (r *replaySet) release(token string) {
	r.mu.Lock()
	delete(r.tokens, token)
	r.mu.Unlock()
}

func (r *replaySet) sweep(now time.Time) {
	r.lastSweep = now
	for t, exp := range r.tokens {
		if !now.Before(exp) {
			delete(r.tokens, t)
		}
	}
}

func (r *replaySet) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tokens)
}
