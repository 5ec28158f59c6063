package kafka

import (
	"errors"
	"testing"
)

func TestOffsetTrackerCommitsOnlyTheContiguousAckedPrefix(t *testing.T) {
	type step struct {
		ack  int   // index of span to ack
		err  bool  // ack with an error
		want int64 // watermark after the step
		ok   bool  // whether toCommit reports progress
	}
	for _, tc := range []struct {
		name  string
		start int64
		spans [][2]int64
		steps []step
	}{
		{
			name: "in order", start: 100, spans: [][2]int64{{100, 110}, {110, 120}, {120, 130}},
			steps: []step{{0, false, 110, true}, {1, false, 120, true}, {2, false, 130, true}},
		},
		{
			name: "out of order waits for the gap", start: 100, spans: [][2]int64{{100, 110}, {110, 120}, {120, 130}},
			steps: []step{{2, false, 100, false}, {1, false, 100, false}, {0, false, 130, true}},
		},
		{
			name: "never past a failed batch", start: 0, spans: [][2]int64{{0, 5}, {5, 9}, {9, 20}},
			steps: []step{{0, false, 5, true}, {1, true, 5, false}, {2, false, 5, false}},
		},
		{
			name: "gaps between batches (compaction) are skipped", start: -1, spans: [][2]int64{{40, 45}, {50, 52}},
			steps: []step{{1, false, 40, false}, {0, false, 52, true}}, // 45..49 compacted away
		},
		{
			name: "acking twice changes nothing", start: 0, spans: [][2]int64{{0, 5}, {5, 10}},
			steps: []step{{1, false, 0, false}, {1, false, 0, false}, {0, false, 10, true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newOffsetTracker(tc.start)
			var spans []*span
			for _, s := range tc.spans {
				spans = append(spans, tr.add(s[0], s[1], int(s[1]-s[0])))
			}
			for i, st := range tc.steps {
				var err error
				if st.err {
					err = errors.New("abandoned")
				}
				tr.ack(spans[st.ack], err)
				got, ok := tr.toCommit()
				if got != st.want || ok != st.ok {
					t.Fatalf("step %d: watermark %d (progress %v), want %d (progress %v)", i, got, ok, st.want, st.ok)
				}
				if ok {
					tr.committedAt(got)
				}
			}
		})
	}
}

func TestOffsetTrackerInFlight(t *testing.T) {
	tr := newOffsetTracker(0)
	a := tr.add(0, 10, 10)
	b := tr.add(10, 15, 5)
	if n := tr.inFlight(); n != 15 {
		t.Fatalf("in flight %d, want 15", n)
	}
	tr.ack(b, errors.New("x"))
	tr.ack(a, nil)
	if n := tr.inFlight(); n != 0 {
		t.Fatalf("in flight %d, want 0", n)
	}
	if w, _ := tr.toCommit(); w != 10 {
		t.Fatalf("watermark %d, want 10 (stops before the failed batch)", w)
	}
}
