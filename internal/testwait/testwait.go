// Package testwait is how tests wait for progress: they poll a condition
// (a count, an offset, a file) with an outer bound generous enough that
// only a real hang reaches it, however slow or busy the machine. When it
// is reached the test fails with the state the caller describes and a dump
// of every goroutine, so the hang can be read from the log.
package testwait

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Hang is the default outer bound: no healthy wait in this repository's
// tests comes near it, even under -race on a loaded two-core machine.
// SLUICE_TEST_HANG (a Go duration) overrides it.
const Hang = 5 * time.Minute

// Bound is Hang, or SLUICE_TEST_HANG when set to a valid duration.
func Bound() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLUICE_TEST_HANG")); err == nil && d > 0 {
		return d
	}
	return Hang
}

// Poll is how often For checks its condition.
const Poll = 20 * time.Millisecond

// For polls cond every Poll until it holds. If Bound passes first, it
// fails the test with what, state() (may be nil: say what is stuck, e.g.
// offsets, lag and counts) and a goroutine dump of this process.
func For(t testing.TB, what string, cond func() bool, state func() string) {
	t.Helper()
	ForEvery(t, Poll, what, cond, state)
}

// ForEvery is For with another poll interval, for conditions that cost a
// request or a file read.
func ForEvery(t testing.TB, every time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	if !until(Bound(), every, cond) {
		Fail(t, what, state)
	}
}

// Recv waits for a value from ch: the progress a test waits on (a run's
// end, an answer, a child's exit). If Bound passes first, it fails the test
// as a hang, naming what and state() (may be nil), with every goroutine's
// stack. It is For for a channel: the one place a test's wait on a channel
// is bounded.
func Recv[T any](t testing.TB, ch <-chan T, what string, state func() string) T {
	t.Helper()
	hang := time.NewTimer(Bound())
	defer hang.Stop()
	select {
	case v := <-ch:
		return v
	case <-hang.C:
		Fail(t, what, state)
		var zero T
		return zero
	}
}

// Until polls cond every Poll until it holds (true) or d passes (false).
func Until(d time.Duration, cond func() bool) bool { return until(d, Poll, cond) }

func until(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

// Fail fails the test as a hang: what was awaited, the caller's state and
// every goroutine's stack.
func Fail(t testing.TB, what string, state func() string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("hung: no ")
	b.WriteString(what)
	b.WriteString(" within ")
	b.WriteString(Bound().String())
	if state != nil {
		b.WriteString("\nstate:\n")
		b.WriteString(state())
	}
	b.WriteString("\ngoroutines:\n")
	b.WriteString(Goroutines())
	t.Fatal(b.String())
}

// Goroutines is a dump of every goroutine of this process.
func Goroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		if len(buf) >= 64<<20 {
			return string(buf[:n]) + "\n… (truncated)"
		}
		buf = make([]byte, 2*len(buf))
	}
}
