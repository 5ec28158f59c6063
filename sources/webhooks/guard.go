package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// replayGuard is one provider's freshness and replay check (ReplayConfig):
// its store of what was seen, and whether a shared store answered last,
// for readiness.
type replayGuard struct {
	provider string // "sendgrid", "mailgun", "ses"
	what     string // what is single-use, for answers: "Mailgun token"
	cfg      ReplayConfig
	store    tokenStore
	shared   bool // a store all replicas share (Redis), probed for Ready
	problem  atomic.Pointer[error]
}

// newReplayGuard opens the provider's store: Redis with replay_store, else
// memory.
func newReplayGuard(provider, what string, rc ReplayConfig, ackTimeout time.Duration) (*replayGuard, error) {
	g := &replayGuard{provider: provider, what: what, cfg: rc}
	if rs := rc.ReplayStore; rs != nil && rs.Redis != nil {
		// Entries outlive their expiry by the longest a request takes
		// from reserve to settle, so that settle finds them.
		linger := ackTimeout + 2*rs.Redis.Timeout.D() + 5*time.Second
		st, err := newRedisTokenStore(rs.Redis, linger, rc.RetryWindow.D())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", provider, err)
		}
		g.store, g.shared = st, true
		return g, nil
	}
	g.store = newReplaySet(rc.ReplayCapacity)
	return g, nil
}

// settleFunc records how an admitted request ended.
type settleFunc func(ctx context.Context, ok bool)

// admit lets a verified request through once: token is what must be
// single-use (a Mailgun token, a hash of SendGrid's signed bytes, an SNS
// MessageId), signed the hash of what the provider signed, signedAt its
// signed timestamp. ref names the request's events in logs (never a
// token or a signature). The settleFunc must be called with the outcome.
func (s *Source) admit(ctx context.Context, g *replayGuard, token string, signed [32]byte, signedAt time.Time, ref string) (settleFunc, *httpError) {
	res, err := g.store.reserve(ctx, token, signed, signedAt, g.cfg.MaxAge.D(), s.now())
	if err != nil {
		// Fail closed: without the store we cannot tell a replay from a
		// first delivery. The provider retries the 503.
		if ctx.Err() == nil {
			s.storeAnswered(g, err)
			s.log.Warn("replay store unavailable; answering 503 so the provider retries", "provider", g.provider, "err", err)
		}
		return nil, reject(http.StatusServiceUnavailable, outcomeUnavailable, "replay store unavailable, retry later")
	}
	s.storeAnswered(g, nil)
	switch res {
	case replayed:
		return nil, unauthorized("replayed %s", g.what)
	case stale:
		return nil, unauthorized("stale %s timestamp", g.what)
	case replayFull:
		return nil, reject(http.StatusServiceUnavailable, outcomeUnavailable, "too many recent requests, retry later")
	}
	return func(ctx context.Context, ok bool) {
		err := g.store.settle(ctx, token, ok, s.now(), g.cfg.RetryWindow.D())
		s.storeAnswered(g, err)
		switch {
		case err == nil:
		case ok:
			// The entry stays in flight until it expires: replays are
			// rejected all the same.
			s.log.Warn("replay store: could not mark a written request as used", "provider", g.provider, "events", ref, "err", err)
		default:
			s.log.Error("replay store: could not mark a failed request for retry; the provider's retries of it will be rejected as replays",
				"provider", g.provider, "events", ref, "err", err)
		}
	}, nil
}

// sharedGuards are the guards whose store is shared (probed for Ready).
func (s *Source) sharedGuards() []*replayGuard {
	var out []*replayGuard
	for _, g := range []*replayGuard{s.sendgridGuard, s.mailgunGuard, s.sesGuard} {
		if g != nil && g.shared {
			out = append(out, g)
		}
	}
	return out
}

// startProbe pings the shared replay stores now and then every probeEvery
// until Close, so that readiness follows them even while no requests
// come in (a replica not ready gets none).
func (s *Source) startProbe() {
	ctx, cancel := context.WithCancel(context.Background())
	s.probeStop, s.probeDone = cancel, make(chan struct{})
	probe := func() {
		for _, g := range s.sharedGuards() {
			if err := g.store.ping(ctx); ctx.Err() == nil {
				s.storeAnswered(g, err)
			}
		}
	}
	probe()
	go func() {
		defer close(s.probeDone)
		t := time.NewTicker(s.probeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				probe()
			}
		}
	}()
}

// storeAnswered records, for Ready, whether g's store answered (err nil)
// the last request or ping, and logs when that changes.
func (s *Source) storeAnswered(g *replayGuard, err error) {
	if err == nil {
		if g.problem.Load() != nil && g.problem.Swap(nil) != nil {
			s.log.Info("replay store answers again; ready", "provider", g.provider)
		}
		return
	}
	if g.problem.Swap(&err) == nil {
		s.log.Warn("replay store unreachable: the provider's requests are answered 503 and the source reports not ready until it answers", "provider", g.provider, "err", err)
	}
}

// storeProblems is the error of every shared store that did not answer
// last, for Ready.
func (s *Source) storeProblems() error {
	var errs []error
	for _, g := range s.sharedGuards() {
		if p := g.problem.Load(); p != nil {
			errs = append(errs, fmt.Errorf("%s replay store: %w", g.provider, *p))
		}
	}
	return errors.Join(errs...)
}

// closeGuards closes every replay store.
func (s *Source) closeGuards() error {
	var errs []error
	for _, g := range []*replayGuard{s.sendgridGuard, s.mailgunGuard, s.sesGuard} {
		if g == nil {
			continue
		}
		if err := g.store.close(); err != nil {
			errs = append(errs, fmt.Errorf("webhooks source: close the %s replay store: %w", g.provider, err))
		}
	}
	return errors.Join(errs...)
}
