package webhooks

import (
	"sync"
	"time"
)

// replaySet remembers Mailgun tokens, bounded in size and per process
// (replicas do not share it).
//
// Mailgun signs only timestamp+token, not the body, so a captured signature
// block could carry any event: a token is accepted once, and only while its
// timestamp is fresh. But a request we answered 5xx is retried by Mailgun,
// possibly with its original (by then stale) signature, for hours: so a
// token whose request we failed is remembered with the hash of its body,
// and an identical retry is accepted within retry_window even if stale.
// A retry with a different body gains nothing from this.
type replaySet struct {
	mu        sync.Mutex
	tokens    map[string]*tokenEntry
	capacity  int
	lastSweep time.Time
}

type tokenState int

const (
	tokenInFlight tokenState = iota // its request is being processed
	tokenUsed                       // its events were durably written
	tokenFailed                     // we answered 5xx: an identical retry is welcome
)

type tokenEntry struct {
	state   tokenState
	body    [32]byte
	expires time.Time
}

func newReplaySet(capacity int) *replaySet {
	return &replaySet{tokens: map[string]*tokenEntry{}, capacity: capacity}
}

type reserveResult int

const (
	reserved reserveResult = iota
	replayed
	stale
	replayFull
)

// reserve admits a verified request's token: fresh and unseen, or the
// identical retry of a request we failed.
func (r *replaySet) reserve(token string, body [32]byte, signedAt time.Time, maxAge time.Duration, now time.Time) reserveResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.tokens[token]; ok && now.Before(e.expires) {
		if e.state == tokenFailed && e.body == body {
			e.state = tokenInFlight
			return reserved
		}
		return replayed
	}
	if absDuration(now.Sub(signedAt)) > maxAge {
		return stale
	}
	if len(r.tokens) >= r.capacity || now.Sub(r.lastSweep) >= 10*time.Second {
		if now.Sub(r.lastSweep) >= time.Second {
			r.sweep(now)
		}
		if len(r.tokens) >= r.capacity {
			return replayFull
		}
	}
	// Past signedAt+maxAge the timestamp check rejects the token anyway.
	r.tokens[token] = &tokenEntry{state: tokenInFlight, body: body, expires: signedAt.Add(maxAge + time.Second)}
	return reserved
}

// settle records how the token's request ended.
func (r *replaySet) settle(token string, ok bool, now time.Time, retryWindow time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, found := r.tokens[token]
	if !found {
		return
	}
	if ok {
		e.state = tokenUsed
		return
	}
	e.state = tokenFailed
	if exp := now.Add(retryWindow); exp.After(e.expires) {
		e.expires = exp
	}
}

func (r *replaySet) sweep(now time.Time) {
	r.lastSweep = now
	for t, e := range r.tokens {
		if !now.Before(e.expires) {
			delete(r.tokens, t)
		}
	}
}
