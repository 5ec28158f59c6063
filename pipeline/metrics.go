package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one pipeline's series. Label values are bound once at build
// time so the hot path never hashes label sets.
type metrics struct {
	eventsIn     *prometheus.CounterVec
	eventsOut    *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	retries      *prometheus.CounterVec
	stageSeconds *prometheus.CounterVec
	writeSeconds *prometheus.HistogramVec
	batchEvents  prometheus.Observer
	endToEnd     *latencyHistogram
	inFlight     prometheus.Gauge
	acked        prometheus.Counter
	ackFailed    prometheus.Counter
	sourceErrors prometheus.Counter
	// deadLettersRepeated counts dead letters skipped as already written.
	deadLettersRepeated prometheus.Counter
	pipelineLabel       string
}

func newMetrics(reg prometheus.Registerer, pipeline string) (*metrics, error) {
	pl := prometheus.Labels{"pipeline": pipeline}
	comp := []string{"component"}
	m := &metrics{pipelineLabel: pipeline}
	m.eventsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_events_in_total", Help: "Events a component received.", ConstLabels: pl}, comp)
	m.eventsOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_events_out_total", Help: "Events a component passed on (sinks: durably written).", ConstLabels: pl}, comp)
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_events_dropped_total", Help: "Events a transform left out on purpose (filtered, deduplicated).", ConstLabels: pl}, comp)
	m.deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_events_dead_lettered_total", Help: "Events failed permanently in a component and written to the dead-letter sink.", ConstLabels: pl}, comp)
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_retries_total", Help: "Retried attempts by component and error class.", ConstLabels: pl}, []string{"component", "class"})
	m.stageSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_stage_seconds_total", Help: "Wall time spent in each component's calls: the bottleneck has the largest rate.", ConstLabels: pl}, comp)
	m.writeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_write_duration_seconds", Help: "Duration of one sink write call.", ConstLabels: pl, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, comp)
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_batch_size_events", Help: "Events per batch handed to the lanes.", ConstLabels: pl, Buckets: prometheus.ExponentialBuckets(1, 2, 14)})
	e2e := newLatencyHistogram(prometheus.HistogramOpts{Name: "sluice_end_to_end_latency_seconds", Help: "From event time to acked, per event.", ConstLabels: pl, Buckets: prometheus.ExponentialBuckets(0.005, 2, 16)})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_batches_in_flight", Help: "Batches queued or being processed.", ConstLabels: pl})
	acks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_source_acks_total", Help: "Source batches settled, by result.", ConstLabels: pl}, []string{"result"})
	srcErr := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_source_read_errors_total", Help: "Failed source reads (retried with backoff).", ConstLabels: pl})
	m.deadLettersRepeated = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_dead_letters_skipped_total", Help: "Dead letters not written again: the dedupe step remembers writing them within its window (a redelivered poison event).", ConstLabels: pl})
	if err := RegisterMetrics(reg, m.eventsIn, m.eventsOut, m.dropped, m.deadLettered, m.retries, m.stageSeconds, m.writeSeconds, batch, e2e, inFlight, acks, srcErr, m.deadLettersRepeated); err != nil {
		return nil, err
	}
	m.batchEvents, m.endToEnd, m.inFlight = batch, e2e, inFlight
	m.acked, m.ackFailed, m.sourceErrors = acks.WithLabelValues("ok"), acks.WithLabelValues("error"), srcErr
	return m, nil
}

// stageMetrics are one component's bound series.
type stageMetrics struct {
	in, out, dropped, dead, seconds prometheus.Counter
	write                           prometheus.Observer
	retries                         *prometheus.CounterVec
	label                           string
}

func (m *metrics) stage(label string) *stageMetrics {
	return &stageMetrics{
		in: m.eventsIn.WithLabelValues(label), out: m.eventsOut.WithLabelValues(label),
		dropped: m.dropped.WithLabelValues(label), dead: m.deadLettered.WithLabelValues(label),
		seconds: m.stageSeconds.WithLabelValues(label), write: m.writeSeconds.WithLabelValues(label),
		retries: m.retries, label: label,
	}
}

func (s *stageMetrics) retried(err error, n int) {
	s.retries.WithLabelValues(s.label, ErrorClass(err)).Add(float64(n))
}

// RegisterMetrics registers a component's collectors with reg (its
// BuildContext's Metrics) in order and returns the first error, such as a
// name already registered with other labels; a nil reg registers none.
// A component builds its series, then calls it once from its constructor.
func RegisterMetrics(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
