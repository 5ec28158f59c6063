package webhooks

import (
	"context"
	"sync"
	"time"
)

// tokenStore remembers Mailgun tokens.
//
// Mailgun signs only timestamp+token, not the body, so a captured signature
// block could carry any event: a token is accepted once, and only while its
// timestamp is fresh. But a request we answered 5xx is retried by Mailgun,
// possibly with its original (by then stale) signature, for hours: so a
// token whose request we failed is remembered with the hash of its body,
// and an identical retry is accepted within retry_window even if stale.
// A retry with a different body gains nothing from this.
//
// replaySet keeps the tokens in memory, per replica; redisTokenStore keeps
// them in Redis, shared by every replica that uses the same key prefix.
// Both follow the same rules; an error means the store could not answer,
// and the request must not be accepted.
type tokenStore interface {
	// reserve admits a verified request's token: fresh and unseen, or
	// the identical retry of a request we failed.
	reserve(ctx context.Context, token string, body [32]byte, signedAt time.Time, maxAge time.Duration, now time.Time) (reserveResult, error)
	// settle records how the reserved token's request ended: ok (its
	// events were durably written) or failed (we answered 5xx).
	settle(ctx context.Context, token string, ok bool, now time.Time, retryWindow time.Duration) error
	// ping checks that the store can be reached (for readiness).
	ping(ctx context.Context) error
	// close releases the store.
	close() error
}

// replaySet is the in-memory tokenStore, bounded in size and per process
// (replicas do not share it).
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

// reserve implements tokenStore; it never fails, but answers replayFull
// when the set is full of live tokens.
func (r *replaySet) reserve(_ context.Context, token string, body [32]byte, signedAt time.Time, maxAge time.Duration, now time.Time) (reserveResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.tokens[token]; ok && now.Before(e.expires) {
		if e.state == tokenFailed && e.body == body {
			e.state = tokenInFlight
			return reserved, nil
		}
		return replayed, nil
	}
	if absDuration(now.Sub(signedAt)) > maxAge {
		return stale, nil
	}
	if len(r.tokens) >= r.capacity || now.Sub(r.lastSweep) >= 10*time.Second {
		if now.Sub(r.lastSweep) >= time.Second {
			r.sweep(now)
		}
		if len(r.tokens) >= r.capacity {
			return replayFull, nil
		}
	}
	// Past signedAt+maxAge the timestamp check rejects the token anyway.
	r.tokens[token] = &tokenEntry{state: tokenInFlight, body: body, expires: tokenExpiry(signedAt, maxAge)}
	return reserved, nil
}

// settle implements tokenStore; it never fails.
func (r *replaySet) settle(_ context.Context, token string, ok bool, now time.Time, retryWindow time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, found := r.tokens[token]
	if !found {
		return nil
	}
	if ok {
		e.state = tokenUsed
		return nil
	}
	e.state = tokenFailed
	if exp := now.Add(retryWindow); exp.After(e.expires) {
		e.expires = exp
	}
	return nil
}

func (r *replaySet) ping(context.Context) error { return nil }

func (r *replaySet) close() error { return nil }

// tokenExpiry is when a token stops mattering unless its request failed:
// from then on the timestamp check rejects it.
func tokenExpiry(signedAt time.Time, maxAge time.Duration) time.Time {
	return signedAt.Add(maxAge + time.Second)
}

// inFlightGrace keeps an in-flight entry past its expiry for as long as
// its request may still be waiting for the ack, so that its settle finds
// it: a request we answer 5xx must be marked failed, or Mailgun's
// identical retry would be refused as stale.
const inFlightGrace = 2 * time.Minute

func (r *replaySet) sweep(now time.Time) {
	r.lastSweep = now
	for t, e := range r.tokens {
		if e.state == tokenInFlight && now.Before(e.expires.Add(inFlightGrace)) {
			continue
		}
		if !now.Before(e.expires) {
			delete(r.tokens, t)
		}
	}
}
