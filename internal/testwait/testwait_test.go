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
