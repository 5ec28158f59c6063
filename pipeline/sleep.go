package pipeline

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever comes first: nil after the
// full wait, ctx's error if the context ended first. A d of zero or less
// does not wait and returns ctx.Err(). Components pace retries and polls
// with it so that every wait stops on shutdown.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
