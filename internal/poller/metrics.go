package poller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

type metrics struct {
	requests *prometheus.CounterVec
	records  *prometheus.CounterVec
	cursor   *prometheus.GaugeVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_poller_requests_total", Help: "Vendor API requests by object and result (ok, error, rate_limited)."}, []string{"vendor", "object", "result"}),
		records:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_poller_records_total", Help: "Record versions handed to the pipeline (repeats within a process dropped)."}, []string{"vendor", "object"}),
		refused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_poller_records_refused_total", Help: "Records refused because their id is not valid UTF-8 (logged, not handed out)."}, []string{"vendor", "object"}),
		cursor:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_poller_cursor_timestamp_seconds", Help: "Modification time of the saved cursor; time() minus it is how far the checkpoint trails."}, []string{"vendor", "object"}),
	}
	if err := pipeline.RegisterMetrics(reg, m.requests, m.records, m.cursor, m.refused); err != nil {
		return nil, err
	}
	return m, nil
}
