package ackorder

import (
	"errors"
	"testing"
)

func TestCheckpointOnlyTheContiguousAckedPrefix(t *testing.T) {
	type step struct {
		ack  int   // index of span to ack
		err  bool  // ack with an error
		want int64 // position after the step
		ok   bool  // whether ToCommit reports progress
	}
	for _, tc := range []struct {
		name  string
		start int64
		has   bool
		marks []int64
		steps []step
	}{
		{
			name: "in order", start: 100, has: true, marks: []int64{110, 120, 130},
			steps: []step{{0, false, 110, true}, {1, false, 120, true}, {2, false, 130, true}},
		},
		{
			name: "out of order waits for the gap", start: 100, has: true, marks: []int64{110, 120, 130},
			steps: []step{{2, false, 100, false}, {1, false, 100, false}, {0, false, 130, true}},
		},
		{
			name: "never past a failed batch", start: 0, has: true, marks: []int64{5, 9, 20},
			steps: []step{{0, false, 5, true}, {1, true, 5, false}, {2, false, 5, false}},
		},
		{
			name: "no start position", marks: []int64{45, 52},
			steps: []step{{1, false, 0, false}, {0, false, 52, true}},
		},
		{
			name: "acking twice changes nothing", start: 0, has: true, marks: []int64{5, 10},
			steps: []step{{1, false, 0, false}, {1, false, 0, false}, {0, false, 10, true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(tc.start, tc.has)
			var spans []*Span[int64]
			for _, m := range tc.marks {
				spans = append(spans, tr.Add(m, 5))
			}
			for i, st := range tc.steps {
				var err error
				if st.err {
					err = errors.New("abandoned")
				}
				tr.Ack(spans[st.ack], err)
				got, token, ok := tr.ToCommit()
				if got != st.want || ok != st.ok {
					t.Fatalf("step %d: position %d (progress %v), want %d (progress %v)", i, got, ok, st.want, st.ok)
				}
				if ok {
					tr.Committed(token)
				}
			}
		})
	}
}

func TestInFlightAndSettled(t *testing.T) {
	tr := New[string]("", false)
	a := tr.Add("seq-10", 10)
	b := tr.Add("seq-15", 5)
	if n := tr.InFlight(); n != 15 || tr.Settled() {
		t.Fatalf("in flight %d, settled %v", n, tr.Settled())
	}
	tr.Ack(b, errors.New("x"))
	tr.Ack(a, nil)
	if n := tr.InFlight(); n != 0 {
		t.Fatalf("in flight %d, want 0", n)
	}
	if pos, ok := tr.Position(); pos != "seq-10" || !ok || tr.Settled() {
		t.Fatalf("position %q %v settled %v: must stop before the failed batch", pos, ok, tr.Settled())
	}
}
