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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lag:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_kafka_consumer_lag", Help: "Records between the partition's high watermark and the group's committed offset."}, []string{"topic", "partition"}),
		commits:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_kafka_commits_total", Help: "Offset commit requests by result."}, []string{"result"}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_kafka_rebalances_total", Help: "Group generations joined (each rebalance starts one)."}),
		assigned:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_kafka_assigned_partitions", Help: "Partitions assigned to this member."}),
	}
	if err := pipeline.RegisterMetrics(reg, m.lag, m.commits, m.rebalances, m.assigned); err != nil {
		return nil, err
	}
	return m, nil
}
