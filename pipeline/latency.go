package pipeline

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyHistogram is sluice_end_to_end_latency_seconds: a Prometheus
// histogram fed a batch at a time. A prometheus.Histogram takes one
// Observe (four atomic updates) per event, which was a third of the
// runner's own CPU behind a Kafka source (bench/RESULTS.md, third round);
// here a batch is counted into local buckets first and added with one
// atomic update per bucket it touched. Scrapes see the same family.
type latencyHistogram struct {
	desc    *prometheus.Desc
	bounds  []float64       // upper bounds, ascending
	counts  []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumBits atomic.Uint64   // float64 bits of the sum of observations
}

// newLatencyHistogram takes the opts a prometheus.Histogram would (Name,
// Help, ConstLabels, Buckets), so the metric is declared like every other.
func newLatencyHistogram(o prometheus.HistogramOpts) *latencyHistogram {
	return &latencyHistogram{
		desc:   prometheus.NewDesc(o.Name, o.Help, nil, o.ConstLabels),
		bounds: o.Buckets,
		counts: make([]atomic.Uint64, len(o.Buckets)+1),
	}
}

// observeBatch adds, for every event with a time, the time from it to now.
func (h *latencyHistogram) observeBatch(now time.Time, events []*Event) {
	var local [64]uint64
	var counts []uint64
	if len(h.counts) <= len(local) {
		counts = local[:len(h.counts)]
	} else {
		counts = make([]uint64, len(h.counts))
	}
	sum := 0.0
	for _, ev := range events {
		if ev.Time.IsZero() {
			continue
		}
		v := now.Sub(ev.Time).Seconds()
		counts[sort.SearchFloat64s(h.bounds, v)]++ // first bound ≥ v: "le"
		sum += v
	}
	for i, c := range counts {
		if c > 0 {
			h.counts[i].Add(c)
		}
	}
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+sum)) {
			return
		}
	}
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect reports the count as the sum of the buckets read, so the +Inf
// bucket always equals it within one scrape.
func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	cumulative := make(map[float64]uint64, len(h.bounds))
	var n uint64
	for i, b := range h.bounds {
		n += h.counts[i].Load()
		cumulative[b] = n
	}
	n += h.counts[len(h.bounds)].Load()
	ch <- prometheus.MustNewConstHistogram(h.desc, n, math.Float64frombits(h.sumBits.Load()), cumulative)
}
