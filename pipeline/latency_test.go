package pipeline

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestLatencyHistogramMatchesPrometheus: batches counted locally give the
// histogram prometheus.Histogram gives for the same observations one by
// one: the same buckets ("le": the first bound ≥ the value), count and sum.
func TestLatencyHistogramMatchesPrometheus(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *Event { return &Event{Time: now.Add(-d)} }
	bounds := prometheus.ExponentialBuckets(0.005, 2, 16)
	tests := []struct {
		name    string
		batches [][]*Event
	}{
		{"empty", nil},
		{"no event time is not observed", [][]*Event{{{}, {}}}},
		{"on a bound and between bounds", [][]*Event{{ago(5 * time.Millisecond), ago(7 * time.Millisecond), ago(10 * time.Millisecond)}}},
		{"above the last bound: +Inf only", [][]*Event{{ago(time.Hour), ago(2 * time.Hour)}}},
		{"event time in the future: the first bucket", [][]*Event{{ago(-time.Second)}}},
		{"many batches", [][]*Event{
			{ago(time.Millisecond), ago(300 * time.Millisecond), {}},
			{ago(2 * time.Second), ago(40 * time.Second), ago(300 * time.Millisecond)},
			{ago(163*time.Second + 840*time.Millisecond)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels := prometheus.Labels{"pipeline": "p"}
			got := newLatencyHistogram(prometheus.HistogramOpts{Name: "lat", Help: "h", ConstLabels: labels, Buckets: bounds})
			want := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat", Help: "h", ConstLabels: labels, Buckets: bounds})
			for _, b := range tt.batches {
				got.observeBatch(now, b)
				for _, ev := range b {
					if !ev.Time.IsZero() {
						want.Observe(now.Sub(ev.Time).Seconds())
					}
				}
			}
			g, w := histogramOf(t, got), histogramOf(t, want)
			if g.GetSampleCount() != w.GetSampleCount() || math.Abs(g.GetSampleSum()-w.GetSampleSum()) > 1e-9 {
				t.Fatalf("count/sum = %d/%v, want %d/%v", g.GetSampleCount(), g.GetSampleSum(), w.GetSampleCount(), w.GetSampleSum())
			}
			if len(g.Bucket) != len(w.Bucket) {
				t.Fatalf("%d buckets, want %d", len(g.Bucket), len(w.Bucket))
			}
			for i := range w.Bucket {
				if g.Bucket[i].GetUpperBound() != w.Bucket[i].GetUpperBound() || g.Bucket[i].GetCumulativeCount() != w.Bucket[i].GetCumulativeCount() {
					t.Errorf("bucket %d: le=%v count %d, want le=%v count %d", i, g.Bucket[i].GetUpperBound(), g.Bucket[i].GetCumulativeCount(), w.Bucket[i].GetUpperBound(), w.Bucket[i].GetCumulativeCount())
				}
			}
		})
	}
}

func histogramOf(t *testing.T, c prometheus.Collector) *dto.Histogram {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Histogram == nil {
		t.Fatal("not a histogram")
	}
	return m.Histogram
}
