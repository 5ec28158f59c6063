package elasticsearch

// metrics.go holds the sink's metrics and the transport that counts bytes.

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

type countingTransport struct {
	next  http.RoundTripper
	bytes prometheus.Counter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.ContentLength > 0 {
		t.bytes.Add(float64(req.ContentLength))
	}
	return t.next.RoundTrip(track(req))
}

type metrics struct {
	items     *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   prometheus.Histogram
	sentBytes prometheus.Counter
	wireBytes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_items_total",
			Help: "Bulk items by outcome (created, updated, noop, exists, retry, failed) and HTTP status.",
		}, []string{"result", "status"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_bulk_requests_total",
			Help: "Bulk requests by HTTP status (error: no answer).",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_elasticsearch_bulk_duration_seconds",
			Help:    "Time from sending a bulk request to reading its whole response.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_sent_bytes_total",
			Help: "Bulk body bytes (NDJSON, before compression).",
		}),
		wireBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_wire_bytes_total",
			Help: "Request body bytes on the wire (after compression).",
		}),
	}
	if err := pipeline.RegisterMetrics(reg, m.items, m.requests, m.latency, m.sentBytes, m.wireBytes); err != nil {
		return nil, err
	}
	return m, nil
}
