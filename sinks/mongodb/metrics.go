package mongodb

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sluicehq/sluice/pipeline"
)

type metrics struct {
	docs    *prometheus.CounterVec
	errors  *prometheus.CounterVec
	latency prometheus.Histogram
	check   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		docs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_mongodb_documents_total",
			Help: "Documents written, by result: inserted, upserted, updated (matched and changed), unchanged (matched, nothing to change), duplicate (already stored: a redelivery).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_mongodb_write_errors_total",
			Help: "Events whose write failed, by class: permanent (dead-lettered) or retryable.",
		}, []string{"class"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_mongodb_write_seconds",
			Help:    "Latency of one bulk write round trip.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		check: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_mongodb_applied_check_seconds",
			Help:    "Latency of the query (mode: upsert) that finds which events of a bulk are already applied.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, r := range []string{"inserted", "upserted", "updated", "unchanged", "duplicate"} {
		m.docs.WithLabelValues(r)
	}
	if err := pipeline.RegisterMetrics(reg, m.docs, m.errors, m.latency, m.check); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) count(r *mongo.BulkWriteResult) {
	m.docs.WithLabelValues("inserted").Add(float64(r.InsertedCount))
	m.docs.WithLabelValues("upserted").Add(float64(r.UpsertedCount))
	m.docs.WithLabelValues("updated").Add(float64(r.ModifiedCount))
	if r.MatchedCount > r.ModifiedCount {
		m.docs.WithLabelValues("unchanged").Add(float64(r.MatchedCount - r.ModifiedCount))
	}
}

func (m *metrics) failed(permanent bool) { m.failedN(permanent, 1) }

func (m *metrics) failedN(permanent bool, n int) {
	class := "retryable"
	if permanent {
		class = "permanent"
	}
	m.errors.WithLabelValues(class).Add(float64(n))
}
