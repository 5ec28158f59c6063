package kinesis

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

type metrics struct {
	behind      *prometheus.GaugeVec
	checkpoints *prometheus.CounterVec
	records     prometheus.Counter
	throttled   prometheus.Counter
	owned       prometheus.Gauge
	eligible    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		behind:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_kinesis_behind_latest_seconds", Help: "Seconds since the oldest record not yet checkpointed arrived (or MillisBehindLatest, if larger), per shard, read every lag_interval."}, []string{"shard"}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_kinesis_checkpoints_total", Help: "Checkpoint writes by result (ok, error, lost)."}, []string{"result"}),
		records:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_kinesis_records_total", Help: "Records fetched."}),
		throttled:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_kinesis_throttled_total", Help: "GetRecords calls refused with ProvisionedThroughputExceeded."}),
		owned:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_kinesis_leases_owned", Help: "Shard leases this consumer holds."}),
		eligible:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_kinesis_shards_readable", Help: "Shards that may be read now (parents finished)."}),
	}
	if err := pipeline.RegisterMetrics(reg, m.behind, m.checkpoints, m.records, m.throttled, m.owned, m.eligible); err != nil {
		return nil, err
	}
	return m, nil
}
