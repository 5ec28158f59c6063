package pipelinetest_test

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestMetricSumAndByLabel: sums over the series that match, counters and
// gauges by value, histograms by observations, and 0 / empty for a family
// nobody registered.
func TestMetricSumAndByLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_c_total", Help: "c"}, []string{"result", "class"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_g", Help: "g"}, []string{"partition"})
	plain := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_plain", Help: "p"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_h_seconds", Help: "h"}, []string{"provider"})
	reg.MustRegister(c, g, plain, h)
	h.WithLabelValues("a").Observe(0.5)
	h.WithLabelValues("a").Observe(2)
	h.WithLabelValues("b").Observe(1)
	c.WithLabelValues("ok", "a").Add(2)
	c.WithLabelValues("ok", "b").Add(3)
	c.WithLabelValues("error", "a").Add(5)
	g.WithLabelValues("0").Set(7)
	g.WithLabelValues("1").Set(11)
	plain.Set(13)
	for _, tc := range []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"all series of a counter", "sluice_c_total", nil, 10},
		{"one label", "sluice_c_total", map[string]string{"result": "ok"}, 5},
		{"two labels", "sluice_c_total", map[string]string{"result": "ok", "class": "b"}, 3},
		{"no series matches", "sluice_c_total", map[string]string{"result": "lost"}, 0},
		{"a gauge", "sluice_g", nil, 18},
		{"a histogram counts observations", "sluice_h_seconds", map[string]string{"provider": "a"}, 2},
		{"a family nobody registered", "sluice_none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pipelinetest.MetricSum(t, reg, tc.metric, tc.labels); got != tc.want {
				t.Fatalf("MetricSum = %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		metric, label string
		want          map[string]float64
	}{
		{"sluice_c_total", "result", map[string]float64{"ok": 5, "error": 5}},
		{"sluice_g", "partition", map[string]float64{"0": 7, "1": 11}},
		{"sluice_plain", "partition", map[string]float64{"": 13}},
		{"sluice_none", "x", map[string]float64{}},
	} {
		if got := pipelinetest.MetricByLabel(t, reg, tc.metric, tc.label); !maps.Equal(got, tc.want) {
			t.Errorf("MetricByLabel(%s, %s) = %v, want %v", tc.metric, tc.label, got, tc.want)
		}
	}
}
