package pipeline

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/cenkalti/backoff/v5"
)

// ErrorClassifier is implemented by a component's errors that name their
// own kind of failure for the retries metric ("throttled", "rejected",
// "mapping"): a short, fixed, low-cardinality word, never built from the
// payload. ErrorClass finds it anywhere in the error chain.
type ErrorClassifier interface {
	ErrorClass() string
}

// ErrorClass names the kind of failure for the retries metric: "timeout",
// "network", "canceled", a component's own class (an ErrorClassifier in
// the chain, e.g. "throttled"), or "other".
func ErrorClass(err error) string {
	var c ErrorClassifier
	var ne net.Error
	switch {
	case errors.As(err, &c):
		return c.ErrorClass()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne):
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	var be *BatchError
	if errors.As(err, &be) && len(be.Failures) > 0 {
		return ErrorClass(be.Failures[0].Err)
	}
	return "other"
}

// retrier paces the attempts of one piece of work: exponential backoff with
// jitter, bounded by MaxAttempts (0 = until the context ends).
type retrier struct {
	cfg   RetryConfig
	b     *backoff.ExponentialBackOff
	tries int
}

func newRetrier(cfg RetryConfig) *retrier {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = cfg.InitialInterval.D()
	b.MaxInterval = cfg.MaxInterval.D()
	b.RandomizationFactor = 0.5
	b.Multiplier = 2
	b.Reset()
	return &retrier{cfg: cfg, b: b}
}

// failed records a failed try and reports whether another is allowed.
func (r *retrier) failed() bool {
	r.tries++
	return r.cfg.MaxAttempts == 0 || r.tries < r.cfg.MaxAttempts
}

// wait sleeps until the next attempt, or returns the context's error.
func (r *retrier) wait(ctx context.Context) error {
	return Sleep(ctx, r.b.NextBackOff())
}
