package testwait

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Fatal was given.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
}

func TestUntil(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after int // cond holds from this call on; -1 never
		want  bool
	}{
		{"holds at once", 0, true},
		{"holds after a few polls", 3, true},
		{"never holds", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			got := Until(10*Poll, func() bool { calls++; return tc.after >= 0 && calls > tc.after })
			if got != tc.want {
				t.Fatalf("Until = %v after %d calls, want %v", got, calls, tc.want)
			}
		})
	}
}

func TestFailReportsStateAndGoroutines(t *testing.T) {
	r := &recorder{TB: t}
	Fail(r, "events stored", func() string { return "stored 12 of 20" })
	for _, want := range []string{"hung: no events stored within", "stored 12 of 20", "goroutine ", "TestFailReportsStateAndGoroutines"} {
		if !strings.Contains(r.fatal, want) {
			t.Fatalf("failure message lacks %q:\n%.2000s", want, r.fatal)
		}
	}
}

func TestBound(t *testing.T) {
	t.Setenv("SLUICE_TEST_HANG", "")
	if Bound() != Hang {
		t.Fatalf("Bound() = %s, want %s", Bound(), Hang)
	}
	t.Setenv("SLUICE_TEST_HANG", "90s")
	if Bound() != 90*time.Second {
		t.Fatalf("Bound() = %s, want 90s", Bound())
	}
	t.Setenv("SLUICE_TEST_HANG", "soon")
	if Bound() != Hang {
		t.Fatalf("a bad SLUICE_TEST_HANG must be ignored; Bound() = %s", Bound())
	}
}

// TestRecv: a value sent is returned; a channel nothing is sent on fails
// as a hang once the bound (here SLUICE_TEST_HANG=50ms) passes, with what
// was awaited and the caller's state.
func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, "a value", nil); got != 7 {
		t.Fatalf("Recv = %d, want 7", got)
	}
	t.Setenv("SLUICE_TEST_HANG", "50ms")
	r := &recorder{TB: t}
	if got := Recv(r, make(chan int), "an answer", func() string { return "asked twice" }); got != 0 {
		t.Fatalf("Recv after a hang = %d, want the zero value", got)
	}
	for _, want := range []string{"hung: no an answer within 50ms", "asked twice"} {
		if !strings.Contains(r.fatal, want) {
			t.Fatalf("failure message lacks %q:\n%.500s", want, r.fatal)
		}
	}
}
