package webhooks

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestReplaySet(t *testing.T) {
	const maxAge = 5 * time.Minute
	t0 := time.Unix(1_700_000_000, 0)
	body := sha256.Sum256([]byte("body"))
	other := sha256.Sum256([]byte("other"))
	for _, tc := range []struct {
		name  string
		steps func(r *replaySet) []reserveResult
		want  []reserveResult
	}{
		{"fresh token once", func(r *replaySet) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", true, t0, time.Hour)
			return []reserveResult{a, r.reserve("t", body, t0, maxAge, t0.Add(time.Minute))}
		}, []reserveResult{reserved, replayed}},
		{"in flight is a replay", func(r *replaySet) []reserveResult {
			return []reserveResult{r.reserve("t", body, t0, maxAge, t0), r.reserve("t", body, t0, maxAge, t0)}
		}, []reserveResult{reserved, replayed}},
		{"stale either way", func(r *replaySet) []reserveResult {
			return []reserveResult{r.reserve("a", body, t0, maxAge, t0.Add(maxAge+time.Second)), r.reserve("b", body, t0.Add(maxAge+time.Second), maxAge, t0)}
		}, []reserveResult{stale, stale}},
		{"failed: identical stale retry accepted, other body not", func(r *replaySet) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			later := t0.Add(30 * time.Minute)
			return []reserveResult{a, r.reserve("t", other, t0, maxAge, later), r.reserve("t", body, t0, maxAge, later)}
		}, []reserveResult{reserved, replayed, reserved}},
		{"failed retry past retry_window is stale", func(r *replaySet) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			return []reserveResult{a, r.reserve("t", body, t0, maxAge, t0.Add(2*time.Hour))}
		}, []reserveResult{reserved, stale}},
		{"full of live tokens fails closed, expired ones are swept", func(r *replaySet) []reserveResult {
			a := r.reserve("a", body, t0, maxAge, t0)
			b := r.reserve("b", body, t0, maxAge, t0)
			c := r.reserve("c", body, t0, maxAge, t0.Add(time.Minute))
			d := r.reserve("d", body, t0.Add(maxAge), maxAge, t0.Add(maxAge+2*time.Second))
			return []reserveResult{a, b, c, d}
		}, []reserveResult{reserved, reserved, replayFull, reserved}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.steps(newReplaySet(2))
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("step %d: %v, want %v (all %v)", i, got[i], tc.want[i], got)
				}
			}
		})
	}
}
