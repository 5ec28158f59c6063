package bench

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/pipeline"
)

//go:embed consumer.yaml
var defaultConsumer []byte

//go:embed producer.yaml
var producerYAML []byte

//go:embed producer-kinesis.yaml
var producerKinesisYAML []byte

//go:embed consumer-kinesis.yaml
var defaultKinesisConsumer []byte

// Options configure one harness run.
type Options struct {
	Profile Profile
	// Registry links the components (the CLI's registry).
	Registry func() *pipeline.Registry
	// Binary runs the producer as a separate process (`Binary run -c`);
	// empty runs it in this process (its CPU then counts as ours).
	Binary string
	// ConsumerConfig is the consumer pipeline's YAML; nil uses the
	// embedded default. ${BENCH_TOPIC}, ${BENCH_GROUP} and ${BENCH_OUT}
	// are provided.
	ConsumerConfig []byte
	ConsumerFile   string
	// Stream is the partitioned stream between producer and consumer:
	// kafka (Brokers) or kinesis (KinesisEndpoint; empty means AWS).
	Stream          string
	Brokers         string
	KinesisEndpoint string
	OutDir          string
	Duplicates      float64
	Poison          float64
	Seed            uint64
	// Drain bounds how long the consumer may take to settle everything
	// after the producer finished: only a stuck consumer reaches it. The
	// run ends when the consumer's group committed every partition to its
	// end (Kafka) or checkpointed every shard at its end (Kinesis).
	Drain    time.Duration
	Progress io.Writer
	Logger   *slog.Logger
	// Keep keeps what the run made for itself — the topic or stream, the
	// consumer group (Kinesis: its leases), the per-run collections and
	// indices — for inspection. By default the run deletes them when it
	// ends, however it ends; Result.Cleanup says what it deleted or kept.
	Keep bool
}

// Second is one second of the run.
type Second struct {
	T         float64 `json:"t"`
	Produced  int64   `json:"produced"`
	Consumed  int64   `json:"consumed"`
	Rate      float64 `json:"events_per_second"`
	Lag       int64   `json:"lag"`
	P99Millis float64 `json:"p99_ms"`
}

// Result is every figure of a run.
type Result struct {
	Profile        string             `json:"profile"`
	Machine        string             `json:"machine"`
	Started        time.Time          `json:"started"`
	Seconds        float64            `json:"seconds"`
	Sent           int64              `json:"sent"`
	Settled        int64              `json:"settled"`
	MeanRate       float64            `json:"mean_events_per_second"`
	PeakRate       float64            `json:"peak_events_per_second"`
	LatencyMillis  map[string]float64 `json:"latency_ms"` // p50 p90 p99 max
	MaxLag         int64              `json:"max_lag"`
	LagRecovered   float64            `json:"lag_recovered_after_seconds,omitempty"`
	CPUSeconds     float64            `json:"consumer_cpu_seconds"`
	CPUPerMillion  float64            `json:"consumer_cpu_seconds_per_million"`
	PeakRSSMiB     float64            `json:"consumer_peak_rss_mib"`
	StageSeconds   map[string]float64 `json:"stage_seconds"`
	Bottleneck     string             `json:"bottleneck"`
	ProducerInProc bool               `json:"producer_in_process"`
	DrainedBy      string             `json:"drained_by"` // how the end of the run was judged
	Series         []Second           `json:"series"`
	Audit          Audit              `json:"audit"`
	// The chaos profile's: the fault timeline, the faults it could not
	// inject here, each consumer slot, events read more than once.
	Faults    []FaultRecord `json:"faults,omitempty"`
	Skipped   []string      `json:"skipped_faults,omitempty"`
	Consumers []SlotStats   `json:"consumers,omitempty"`
	Reread    int64         `json:"events_reread,omitempty"`
	// Stamp is the run's own mark, in every name it made for itself
	// (bench.<profile>.<stamp>, bench-<stamp>, events_bench-<stamp>).
	Stamp string `json:"stamp"`
	// Cleanup is what the run deleted or kept when it ended.
	Cleanup *Cleanup `json:"cleanup,omitempty"`
}

// Run drives one profile end to end: a fresh topic, the consumer in this
// process, the producer, the measurements, and the audit. Each step is
// one of the functions below, in this order.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	cl := newCleaner(o, strconv.FormatInt(time.Now().UnixNano(), 36))
	defer func() { res = cl.finish(ctx, o, res) }()
	producer, vars, err := prepareStream(ctx, o, cl)
	if err != nil {
		return nil, err
	}
	cfg, err := loadConsumer(o, vars)
	if err != nil {
		return nil, err
	}
	cl.consumer(o, cfg)
	audit, err := openAuditor(ctx, cfg)
	cl.auditor(audit)
	if err != nil {
		return nil, err
	}
	c, err := buildConsumer(ctx, o, cfg)
	if err != nil {
		return nil, err
	}
	total := o.Profile.Events()
	drained := newDrainCheck(o, cfg, c.p, audit.expectedSettled(total))
	res = &Result{Profile: o.Profile.Name, Machine: machine(), Started: time.Now(), ProducerInProc: o.Binary == "", DrainedBy: drained.By}
	cpu0, _ := rusage()
	consumerCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	// consumerExited closes when the consumer's Run returned consumerErr:
	// measure may see it end (a consumer that failed) and Run still waits
	// for it, so it is a close, not one value to receive.
	var consumerErr error
	consumerExited := make(chan struct{})
	go func() { defer close(consumerExited); consumerErr = c.p.Run(consumerCtx) }()
	producerCtx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	produced, producerDone, producerExited := runPhases(producerCtx, o, producer, vars)

	start := time.Now()
	runErr := c.measure(ctx, o, res, drained, produced, producerDone, consumerExited, total)
	fmt.Fprintln(o.Progress)
	elapsed := time.Since(start)
	cpu1, rss := rusage()
	stopProducer() // a producer still writing (the run failed or was cut short) ends here
	<-producerExited
	stopConsumer()
	<-consumerExited
	switch {
	case consumerErr == nil:
	case runErr == nil:
		runErr = consumerErr
	case errors.Is(runErr, errConsumerStopped):
		runErr = fmt.Errorf("%w: %w", runErr, consumerErr)
	}
	c.summarize(res, o, elapsed, produced(), cpu1-cpu0, rss)
	a, err := audit.run(ctx, o, total)
	if err != nil {
		return res, errors.Join(runErr, fmt.Errorf("audit: %w", err))
	}
	res.Audit = a
	return res, runErr
}

// errConsumerStopped is measure's error when the consumer ended on its own.
var errConsumerStopped = errors.New("consumer stopped before it drained the stream")

// withDefaults checks the stream and fills the unset options.
func (o Options) withDefaults() (Options, error) {
	switch o.Stream {
	case "", "kafka":
		o.Stream = "kafka"
		if o.Brokers == "" {
			return o, errors.New("bench needs Kafka: set SLUICE_KAFKA_BROKERS (make testenv; source .testenv/env)")
		}
	case "kinesis":
	default:
		return o, fmt.Errorf("stream must be kafka or kinesis, not %q", o.Stream)
	}
	o.fillUnset()
	return o, os.MkdirAll(o.OutDir, 0o755)
}

// fillUnset fills what every run, chaos or not, leaves unset: the drain
// bound, a logger and a progress writer that discard.
func (o *Options) fillUnset() {
	if o.Drain == 0 {
		o.Drain = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// prepareStream creates the run's topic (or Kinesis stream) and returns
// the producer config and the ${BENCH_*} variables of both pipelines.
func prepareStream(ctx context.Context, o Options, cl *cleaner) ([]byte, map[string]string, error) {
	stamp := cl.stamp
	topic, group := "bench."+o.Profile.Name+"."+stamp, "bench-"+stamp
	producer := producerYAML
	if o.Stream == "kinesis" {
		topic, producer = "bench-"+o.Profile.Name+"-"+stamp, producerKinesisYAML
		if err := createStream(ctx, o.KinesisEndpoint, topic, 4); err != nil {
			return nil, nil, err
		}
		cl.kinesisEndpoint, cl.stream = o.KinesisEndpoint, topic
	} else {
		if err := createTopic(ctx, o.Brokers, topic, 12); err != nil {
			return nil, nil, err
		}
		cl.brokers, cl.topic = strings.Split(o.Brokers, ","), topic
	}
	return producer, map[string]string{"SLUICE_KAFKA_BROKERS": o.Brokers, "SLUICE_KINESIS_ENDPOINT": o.KinesisEndpoint, "BENCH_TOPIC": topic, "BENCH_GROUP": group, "BENCH_OUT": o.OutDir}, nil
}

// varsGetenv resolves ${VAR} from vars first, then the environment.
func varsGetenv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
}

// loadConsumer loads the consumer config (the embedded default for the
// stream unless one was given).
func loadConsumer(o Options, vars map[string]string) (*pipeline.Config, error) {
	consumerYAML, consumerName := o.ConsumerConfig, o.ConsumerFile
	if consumerYAML == nil {
		consumerYAML, consumerName = defaultConsumer, "bench/consumer.yaml (embedded)"
		if o.Stream == "kinesis" {
			consumerYAML, consumerName = defaultKinesisConsumer, "bench/consumer-kinesis.yaml (embedded)"
		}
	}
	return pipeline.Load(consumerName, consumerYAML, o.Registry(), varsGetenv(vars))
}

// inProcConsumer is the consumer pipeline built in this process with the
// latency histograms its settle observer fills.
type inProcConsumer struct {
	p       *pipeline.Pipeline
	promReg *prometheus.Registry
	latMu   sync.Mutex
	lat     *hdrhistogram.Histogram // the whole run, µs
	second  *hdrhistogram.Histogram // the current second, µs
}

func buildConsumer(ctx context.Context, o Options, cfg *pipeline.Config) (*inProcConsumer, error) {
	c := &inProcConsumer{
		promReg: prometheus.NewRegistry(),
		lat:     hdrhistogram.New(1, 10*60*1000*1000, 3), // µs, up to 10 minutes
		second:  hdrhistogram.New(1, 10*60*1000*1000, 3),
	}
	p, err := pipeline.Build(ctx, cfg, o.Registry(), pipeline.WithLogger(o.Logger), pipeline.WithMetricsRegisterer(c.promReg),
		pipeline.WithSettleObserver(c.observe))
	if err != nil {
		return nil, err
	}
	c.p = p
	return c, nil
}

// observe records the end-to-end latency of settled events.
func (c *inProcConsumer) observe(events []*pipeline.Event, err error) {
	if err != nil {
		return
	}
	now := time.Now()
	c.latMu.Lock()
	defer c.latMu.Unlock()
	for _, ev := range events {
		if !ev.Time.IsZero() {
			us := now.Sub(ev.Time).Microseconds()
			_ = c.lat.RecordValue(max(1, us))
			_ = c.second.RecordValue(max(1, us))
		}
	}
}

// measure records one Second a second until the producer finished and the
// consumer drained (or the drain bound, the consumer's end or ctx came
// first, which it returns as the error).
func (c *inProcConsumer) measure(ctx context.Context, o Options, res *Result, drained drainCheck, produced func() int64,
	producerDone <-chan error, consumerExited <-chan struct{}, total int64) error {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastConsumed int64
	var drainDeadline time.Time
	for {
		select {
		case err := <-producerDone:
			if err != nil {
				return err
			}
			drainDeadline = time.Now().Add(o.Drain)
		case <-consumerExited:
			return errConsumerStopped
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			st := c.p.Stats()
			c.latMu.Lock()
			p99 := float64(c.second.ValueAtQuantile(99)) / 1000
			c.second.Reset()
			c.latMu.Unlock()
			prod := produced()
			s := Second{T: time.Since(start).Seconds(), Produced: prod, Consumed: st.Read, Rate: float64(st.Read - lastConsumed), Lag: max(0, prod-st.Read), P99Millis: p99}
			lastConsumed = st.Read
			res.Series = append(res.Series, s)
			progressBar(o.Progress, s, total, "")
			if drainDeadline.IsZero() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			done, where, err := drained.check(cctx)
			cancel()
			if done {
				return nil
			}
			if time.Now().After(drainDeadline) {
				return fmt.Errorf("the consumer did not settle all %d events within the %s drain (%s: %s, err %v)", total, o.Drain, drained.By, where, err)
			}
		}
	}
}

// summarize fills the run's figures from the series, the consumer's
// stats, histograms and stage timings.
func (c *inProcConsumer) summarize(res *Result, o Options, elapsed time.Duration, sent int64, cpu time.Duration, rss float64) {
	st := c.p.Stats()
	res.Seconds = elapsed.Seconds()
	res.Sent = sent
	res.Settled = st.Read
	res.MeanRate = float64(st.Read) / elapsed.Seconds()
	for _, s := range res.Series {
		res.PeakRate = max(res.PeakRate, s.Rate)
		res.MaxLag = max(res.MaxLag, s.Lag)
	}
	res.LagRecovered = lagRecovery(res.Series, o.Profile)
	c.latMu.Lock()
	res.LatencyMillis = map[string]float64{
		"p50": float64(c.lat.ValueAtQuantile(50)) / 1000, "p90": float64(c.lat.ValueAtQuantile(90)) / 1000,
		"p99": float64(c.lat.ValueAtQuantile(99)) / 1000, "max": float64(c.lat.Max()) / 1000,
	}
	c.latMu.Unlock()
	res.CPUSeconds = cpu.Seconds()
	if st.Read > 0 {
		res.CPUPerMillion = res.CPUSeconds / float64(st.Read) * 1e6
	}
	res.PeakRSSMiB = rss
	res.StageSeconds, res.Bottleneck = stages(c.promReg)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// rusage is this process's CPU time and peak RSS (MiB).
func rusage() (time.Duration, float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), float64(ru.Maxrss) / 1024
}

// stages reads sluice_stage_seconds_total: time spent per component.
func stages(g prometheus.Gatherer) (map[string]float64, string) {
	out := map[string]float64{}
	mfs, err := g.Gather()
	if err != nil {
		return out, ""
	}
	best, bestV := "", 0.0
	for _, mf := range mfs {
		if mf.GetName() != "sluice_stage_seconds_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			name := label(m, "component")
			out[name] = m.GetCounter().GetValue()
			if out[name] > bestV {
				best, bestV = name, out[name]
			}
		}
	}
	return out, best
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// lagRecovery is, for a burst, how long after the burst phase ended the
// lag fell back under one second of peak traffic.
func lagRecovery(series []Second, p Profile) float64 {
	if len(p.Phases) < 2 {
		return 0
	}
	burstEnd := p.Phases[0].Duration.Seconds()
	for _, s := range series {
		if s.T > burstEnd && float64(s.Lag) <= PeakRate {
			return s.T - burstEnd
		}
	}
	return -1
}

func machine() string {
	host, _ := os.Hostname()
	data, _ := os.ReadFile("/proc/cpuinfo")
	model := ""
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
			break
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", host, numCPU(), model)
}

// progressBar is the live line: a bar of how much of total the consumer has
// settled, its percentage (then what, e.g. " committed"), the run's
// seconds, rate, lag and p99.
func progressBar(w io.Writer, s Second, total int64, what string) {
	frac := 0.0
	if total > 0 {
		frac = min(1, float64(s.Consumed)/float64(total))
	}
	const width = 30
	bar := strings.Repeat("█", int(frac*width)) + strings.Repeat("░", width-int(frac*width))
	fmt.Fprintf(w, "\r%s %5.1f%%%s  %6.0fs  %8.0f ev/s  lag %8d  p99 %7.1f ms ", bar, frac*100, what, s.T, s.Rate, s.Lag, s.P99Millis)
}

// DefaultConsumer is the embedded consumer pipeline the harness drives
// unless told otherwise.
func DefaultConsumer() []byte { return defaultConsumer }

// DefaultKinesisConsumer is the embedded consumer for --stream kinesis.
func DefaultKinesisConsumer() []byte { return defaultKinesisConsumer }
