package pipeline_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

// TestRegisterMetrics: every collector is registered, in order, up to the
// first that reg refuses, whose error is returned; a nil registerer (no
// metrics wanted) registers nothing and is no error.
func TestRegisterMetrics(t *testing.T) {
	counter := func(name string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: name})
	}
	for _, tc := range []struct {
		name    string
		taken   string // a name registered before, with other labels
		cs      []string
		wantErr bool
		want    []string // registered afterwards, besides taken
	}{
		{"all", "", []string{"sluice_a_total", "sluice_b_total"}, false, []string{"sluice_a_total", "sluice_b_total"}},
		{"none", "", nil, false, nil},
		{"second refused", "sluice_b_total", []string{"sluice_a_total", "sluice_b_total", "sluice_c_total"}, true, []string{"sluice_a_total"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			if tc.taken != "" {
				v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: tc.taken, Help: "other"}, []string{"x"})
				v.WithLabelValues("1").Inc()
				reg.MustRegister(v)
			}
			var cs []prometheus.Collector
			for _, n := range tc.cs {
				c := counter(n)
				c.Inc()
				cs = append(cs, c)
			}
			err := pipeline.RegisterMetrics(reg, cs...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, mf := range mfs {
				got[mf.GetName()] = true
			}
			delete(got, tc.taken)
			if len(got) != len(tc.want) {
				t.Fatalf("registered %v, want %v", got, tc.want)
			}
			for _, n := range tc.want {
				if !got[n] {
					t.Fatalf("registered %v, want %v", got, tc.want)
				}
			}
		})
	}
	if err := pipeline.RegisterMetrics(nil, counter("sluice_nil_total")); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
}
