package kafka

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

type metrics struct {
	lag        *prometheus.GaugeVec
	commits    *prometheus.CounterVec
	rebalances prometheus.Counter
	assigned   prometheus.Gauge
	// fetchErrors counts failed fetches; the partition redials its leader
	// with backoff after each.
	fetchErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lag:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_kafka_consumer_lag", Help: "Records between the partition's high watermark and the group's committed offset."}, []string{"topic", "partition"}),
		commits:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_kafka_commits_total", Help: "Offset commit requests by result."}, []string{"result"}),
		rebalances:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_kafka_rebalances_total", Help: "Group generations joined (each rebalance starts one)."}),
		assigned:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_kafka_assigned_partitions", Help: "Partitions assigned to this member."}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_kafka_fetch_errors_total", Help: "Fetches of a partition that failed (lost leader, refused, network); the partition redials its leader with backoff after each."}, []string{"topic"}),
	}
	if err := pipeline.RegisterMetrics(reg, m.lag, m.commits, m.rebalances, m.assigned, m.fetchErrors); err != nil {
		return nil, err
	}
	return m, nil
}
