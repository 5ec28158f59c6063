package pipelinetest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricSum is the sum of the values of metric family name in g (a
// counter's or gauge's value, a histogram's count of observations) over
// the series whose labels include every pair of
// labels (nil: every series); 0 when there are none. It fails t when g
// cannot be gathered.
func MetricSum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range series(t, g, name) {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
			}
		}
		if match {
			sum += value(m)
		}
	}
	return sum
}

// MetricByLabel sums the values of metric family name in g (as MetricSum
// reads them) by the value of their label (under "" for a series
// without it). It fails t when g cannot be gathered.
func MetricByLabel(t testing.TB, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range series(t, g, name) {
		v := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				v = l.GetValue()
			}
		}
		out[v] += value(m)
	}
	return out
}

func series(t testing.TB, g prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

// value is a series' value: a counter's or gauge's, or a histogram's
// count of observations.
func value(m *dto.Metric) float64 {
	return m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
}
