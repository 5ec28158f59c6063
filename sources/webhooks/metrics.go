package webhooks

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/pipeline"
)

// Request outcomes, the `outcome` label of the request metrics.
const (
	outcomeAccepted     = "accepted"      // 2xx after the ack (or nothing to write)
	outcomeConfirmed    = "confirmed"     // SNS subscription confirmed
	outcomeUnauthorized = "unauthorized"  // bad, stale or replayed signature (401)
	outcomeForbidden    = "forbidden"     // verified but not allowed: topic, region, account (403/404)
	outcomeBadRequest   = "bad_request"   // malformed body (400)
	outcomeTooLarge     = "too_large"     // body over max_body_bytes (413)
	outcomeUnavailable  = "unavailable"   // queue full, ack error or ack timeout, shutting down (503)
	outcomeUpstreamFail = "upstream_fail" // certificate fetch or subscription confirmation failed (502)
)

type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// bodyBytes is what request bodies hold (byteBudget).
	bodyBytes prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_webhook_requests_total", Help: "Webhook requests answered, by provider and outcome."}, []string{"provider", "outcome"}),
		events:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_webhook_events_total", Help: "Webhook events durably written (acked) and answered 2xx, by provider."}, []string{"provider"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_webhook_request_duration_seconds", Help: "Time from a webhook request's arrival to its answer (the ack wait included), by provider and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "outcome"}),
		bodyBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_webhook_body_bytes", Help: "Bytes held by webhook request bodies being read or handled, at most max_concurrent × max_body_bytes."}),
	}
	if err := pipeline.RegisterMetrics(reg, m.requests, m.events, m.latency, m.bodyBytes); err != nil {
		return nil, err
	}
	return m, nil
}
