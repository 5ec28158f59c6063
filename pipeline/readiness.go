package pipeline

import "sync/atomic"

// Readiness is the latch behind a component's ReadinessReporter: the last
// problem it recorded, or nil once it is ready again. The zero value is
// ready; components not ready until something happened (a group joined, a
// first probe) Set an error in their constructor. Safe for concurrent use:
// a background probe sets it while /readyz reads it.
type Readiness struct {
	problem atomic.Pointer[error]
}

// Set records err as the reason the component is not ready, or clears it
// when err is nil, and returns the reason it replaces (nil if it was
// ready), so a caller can log the transitions only. Clearing a latch that
// is already clear writes nothing: a hot path may call Set(nil) per write.
func (r *Readiness) Set(err error) (prev error) {
	if err == nil {
		if r.problem.Load() == nil {
			return nil
		}
		if p := r.problem.Swap(nil); p != nil {
			return *p
		}
		return nil
	}
	if p := r.problem.Swap(&err); p != nil {
		return *p
	}
	return nil
}

// Ready returns the recorded problem, nil when ready.
func (r *Readiness) Ready() error {
	if p := r.problem.Load(); p != nil {
		return *p
	}
	return nil
}
