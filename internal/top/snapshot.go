// Package top is `sluice top`: it scrapes one or several replicas' /metrics,
// turns two scrapes into rates per component, and renders them in a
// terminal view (bubbletea).
package top

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Key names one component of one pipeline.
type Key struct{ Pipeline, Component string }

// Counters are a component's cumulative counters, summed over replicas.
type Counters struct {
	In, Out, Dropped, Dead, Seconds float64
	Retries                         map[string]float64 // by error class
}

// Snapshot is what one scrape of every replica showed.
type Snapshot struct {
	At         time.Time
	Components map[Key]*Counters
	InFlight   map[string]float64 // batches in flight, per pipeline
	// Lag is records behind per Kafka topic/partition (or seconds behind
	// per Kinesis shard), the largest a replica reports.
	Lag map[string]float64
	// Latency is the end-to-end latency histogram per pipeline: cumulative
	// counts by upper bound.
	Latency map[string]map[float64]float64
	// Errors are the replicas that did not answer, by URL.
	Errors map[string]error
}

func newSnapshot(at time.Time) *Snapshot {
	return &Snapshot{At: at, Components: map[Key]*Counters{}, InFlight: map[string]float64{},
		Lag: map[string]float64{}, Latency: map[string]map[float64]float64{}, Errors: map[string]error{}}
}

// Scrape reads every URL's /metrics (a URL without a path gets /metrics)
// and sums them.
func Scrape(ctx context.Context, client *http.Client, urls []string) *Snapshot {
	s := newSnapshot(time.Now())
	for _, u := range urls {
		fams, err := fetch(ctx, client, u)
		if err != nil {
			s.Errors[u] = err
			continue
		}
		s.Add(fams)
	}
	return s
}

func fetch(ctx context.Context, client *http.Client, u string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no answer: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s (is this a sluice metrics address?)", resp.Status)
	}
	return Parse(io.LimitReader(resp.Body, 64<<20))
}

// Parse reads Prometheus text exposition.
func Parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("not Prometheus metrics: %w", err)
	}
	return fams, nil
}

// Add sums one replica's metric families into s.
func (s *Snapshot) Add(fams map[string]*dto.MetricFamily) {
	counter := func(name string, set func(c *Counters, m *dto.Metric, v float64)) {
		f := fams[name]
		if f == nil {
			return
		}
		for _, m := range f.Metric {
			k := Key{label(m, "pipeline"), label(m, "component")}
			c := s.Components[k]
			if c == nil {
				c = &Counters{Retries: map[string]float64{}}
				s.Components[k] = c
			}
			set(c, m, m.GetCounter().GetValue())
		}
	}
	counter("sluice_events_in_total", func(c *Counters, _ *dto.Metric, v float64) { c.In += v })
	counter("sluice_events_out_total", func(c *Counters, _ *dto.Metric, v float64) { c.Out += v })
	counter("sluice_events_dropped_total", func(c *Counters, _ *dto.Metric, v float64) { c.Dropped += v })
	counter("sluice_events_dead_lettered_total", func(c *Counters, _ *dto.Metric, v float64) { c.Dead += v })
	counter("sluice_stage_seconds_total", func(c *Counters, _ *dto.Metric, v float64) { c.Seconds += v })
	counter("sluice_retries_total", func(c *Counters, m *dto.Metric, v float64) { c.Retries[label(m, "class")] += v })
	if f := fams["sluice_batches_in_flight"]; f != nil {
		for _, m := range f.Metric {
			s.InFlight[label(m, "pipeline")] += m.GetGauge().GetValue()
		}
	}
	if f := fams["sluice_kafka_consumer_lag"]; f != nil {
		for _, m := range f.Metric {
			k := label(m, "topic") + "/" + label(m, "partition")
			s.Lag[k] = math.Max(s.Lag[k], m.GetGauge().GetValue())
		}
	}
	if f := fams["sluice_kinesis_behind_latest_seconds"]; f != nil {
		for _, m := range f.Metric {
			k := label(m, "shard") + " (s)"
			s.Lag[k] = math.Max(s.Lag[k], m.GetGauge().GetValue())
		}
	}
	if f := fams["sluice_end_to_end_latency_seconds"]; f != nil {
		for _, m := range f.Metric {
			p := label(m, "pipeline")
			h := s.Latency[p]
			if h == nil {
				h = map[float64]float64{}
				s.Latency[p] = h
			}
			inf := false // the text format lists le="+Inf"; protobuf leaves it out
			for _, b := range m.GetHistogram().GetBucket() {
				h[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				inf = inf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !inf {
				h[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// quantile estimates the q quantile of the events counted between prev and
// cur (cumulative bucket counts), interpolating inside the bucket as
// Prometheus' histogram_quantile does. ok is false without events.
func quantile(q float64, prev, cur map[float64]float64) (v float64, ok bool) {
	bounds := make([]float64, 0, len(cur))
	for b := range cur {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, false
	}
	total := cur[math.Inf(1)] - prev[math.Inf(1)]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		n := cur[b] - prev[b]
		if n >= rank {
			if math.IsInf(b, 1) {
				return lower, true // above the last finite bound: its value
			}
			if n == below {
				return b, true
			}
			return lower + (b-lower)*(rank-below)/(n-below), true
		}
		lower, below = b, n
	}
	return lower, true
}

func formatDuration(sec float64) string {
	switch {
	case sec < 1:
		return strconv.FormatFloat(sec*1000, 'f', 0, 64) + "ms"
	case sec < 120:
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	return (time.Duration(sec) * time.Second).String()
}
