package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// ChaosOptions configure a chaos run: Options (the stream, the consumer
// config, the binary, the workload's duplicates, poison and seed) plus
// the consumer group, the producer's pace and the fault schedule.
type ChaosOptions struct {
	Options
	// Consumers is how many `sluice run` processes form the group.
	Consumers int
	// Rate (events/s) for Duration is the producer's steady load.
	Rate     float64
	Duration time.Duration
	// Faults are the classes to inject (FaultClasses), drawn in a seeded
	// order that injects every class once before repeating one.
	Faults []string
	// EveryMin..EveryMax is the pause before each fault (seeded).
	EveryMin, EveryMax time.Duration
	// MinFaults keeps injecting after the producer finished until this
	// many faults were injected (0: faults only while it produces).
	MinFaults int
	// Stall is how long store-stall and broker-stall keep a server stopped.
	Stall time.Duration
	// PIDDir holds <server>.pid files (mongo, elasticsearch, redis,
	// kafka*) of servers on this machine; "" disables server faults.
	PIDDir string
	// RestartCmd is, per server name, a shell command that starts it again
	// after store-kill and rewrites its pid file.
	RestartCmd map[string]string
}

// FaultRecord is one entry of the fault timeline.
type FaultRecord struct {
	Class  string  `json:"class"`
	Target string  `json:"target"`
	At     float64 `json:"at_seconds"`   // since the run started
	Took   float64 `json:"took_seconds"` // injecting it: a stall's length, a stop and restart
	// RecoveredAfter is from At until the group's lag was back under one
	// second of traffic after it had risen above it; 0 when it never rose
	// above it, -1 when it had not come back by the end of the run.
	RecoveredAfter float64 `json:"recovered_after_seconds"`
	Err            string  `json:"error,omitempty"`

	exceeded, resolved, active bool
}

// chaosRun is one run's moving parts.
type chaosRun struct {
	o        ChaosOptions
	plan     plan
	cfg      *pipeline.Config
	stream   *chaosStream
	fleet    *fleet
	start    time.Time
	rng      *rand.Rand
	produced atomic.Bool // the producer finished
	fatal    chan error  // a fault the run cannot recover from (a server that did not come back)
	crashes  int         // consumers that exited on their own (the sampler's)

	mu     sync.Mutex
	faults []*FaultRecord
}

// RunChaos runs a consumer group of `sluice run` processes — a Kafka
// group, or consumers sharing a Kinesis stream's leases — under a steady
// load and a seeded fault schedule until the group's positions reach the
// stream's end, then audits the stores (and, on Kinesis, the per-key
// order across shard splits). The result's Faults are the timeline; a run
// that did not drain returns an error.
func RunChaos(ctx context.Context, o ChaosOptions) (res *Result, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	cl := newCleaner(o.Options, strconv.FormatInt(time.Now().UnixNano(), 36))
	defer func() { res = cl.finish(ctx, o.Options, res) }()
	vars := chaosVars(o, cl.stamp)
	vars["BENCH_OUT"] = filepath.Join(o.OutDir, "consumers", "*")
	cfg, childFile, err := chaosConfig(o, vars)
	if err != nil {
		return nil, err
	}
	brokers := 0
	if o.Stream == "kafka" {
		if brokers, err = clusterBrokers(ctx, sourceBrokers(o.Options, cfg)); err != nil {
			return nil, err
		}
	}
	p, err := planFaults(o, cfg, brokers)
	if err != nil {
		return nil, err
	}
	for _, s := range p.skipped {
		fmt.Fprintln(o.Progress, "chaos: "+s)
	}
	cl.consumer(o.Options, cfg)
	audit, err := openAuditor(ctx, cfg)
	cl.auditor(audit)
	if err != nil {
		return nil, err
	}
	stream, err := openChaosStream(ctx, o, cfg, brokers, cl)
	if err != nil {
		return nil, err
	}
	defer stream.close()
	var env []string
	for k, v := range vars {
		if k != "BENCH_OUT" && k != "BENCH_METRICS" && v != "" {
			env = append(env, k+"="+v)
		}
	}
	r := &chaosRun{o: o, plan: p, cfg: cfg, stream: stream, start: time.Now(), rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), fatal: make(chan error, 1),
		fleet: newFleet(o.Binary, childFile, filepath.Join(o.OutDir, "consumers"), cfg.Source.Spec.Label(), env)}
	res, runErr := r.run(ctx, vars)
	if res == nil {
		return nil, runErr
	}
	res.DrainedBy = stream.drainedBy
	res.Skipped = p.skipped
	if runErr != nil {
		// An unfinished run's stores miss what was not consumed yet: an
		// audit would count it as lost. The error says what happened.
		return res, runErr
	}
	a, err := audit.run(ctx, o.Options, o.Profile.Events())
	if err != nil {
		return res, errors.Join(runErr, fmt.Errorf("audit: %w", err))
	}
	if stream.tail != nil {
		a.Order = stream.tail.checkOrder(ctx, cfg)
	}
	res.Audit = a
	return res, runErr
}

// withDefaults checks the options and fills the unset ones.
func (o ChaosOptions) withDefaults() (ChaosOptions, error) {
	if o.Stream == "" {
		o.Stream = "kafka"
	}
	if err := o.validate(); err != nil {
		return o, err
	}
	if o.Stream == "kafka" && o.Brokers == "" {
		return o, errors.New("bench needs Kafka: set SLUICE_KAFKA_BROKERS (make testenv; source .testenv/env)")
	}
	o.fillUnset()
	// The sampler and the fault schedule both write progress lines.
	o.Progress = &lockedWriter{w: o.Progress}
	phase := Phase{Name: "chaos", Rate: o.Rate, Duration: o.Duration}
	o.Profile = Profile{Name: "chaos", Phases: []Phase{phase}}
	return o, os.MkdirAll(o.OutDir, 0o755)
}

// chaosConfig loads the consumer config (for the audit and the fault plan)
// and writes the children's copy, which serves /metrics on
// ${BENCH_METRICS} so the bench can read each process's progress.
func chaosConfig(o ChaosOptions, vars map[string]string) (*pipeline.Config, string, error) {
	yaml, name := o.ConsumerConfig, o.ConsumerFile
	if yaml == nil {
		yaml, name = defaultConsumer, "bench/consumer.yaml (embedded)"
		if o.Stream == "kinesis" {
			yaml, name = defaultKinesisConsumer, "bench/consumer-kinesis.yaml (embedded)"
		}
	}
	getenv := varsGetenv(vars)
	cfg, err := pipeline.Load(name, yaml, o.Registry(), getenv)
	if err != nil {
		return nil, "", err
	}
	if err := checkChaosSource(o, name, cfg); err != nil {
		return nil, "", err
	}
	child := string(yaml)
	switch {
	case cfg.Metrics.Listen == "":
		child = strings.TrimRight(child, "\n") + "\n# added by sluice bench --profile chaos\nmetrics: {listen: \"${BENCH_METRICS}\"}\n"
		if cfg, err = pipeline.Load(name, []byte(child), o.Registry(), getenv); err != nil {
			return nil, "", fmt.Errorf("%s with metrics.listen added: %w", name, err)
		}
	case !strings.Contains(child, "${BENCH_METRICS"):
		return nil, "", fmt.Errorf("%s: metrics.listen %q would be shared by the %d consumers; use \"${BENCH_METRICS}\" (a free port per process)", name, cfg.Metrics.Listen, o.Consumers)
	}
	file := filepath.Join(o.OutDir, "consumer.yaml")
	if err := os.WriteFile(file, []byte(child), 0o644); err != nil {
		return nil, "", err
	}
	return cfg, file, nil
}

// run starts the group, the producer and the faults, samples every second
// until the group drained (or the drain bound passed), and stops them all.
func (r *chaosRun) run(ctx context.Context, vars map[string]string) (*Result, error) {
	o := r.o
	defer r.fleet.stopAll(time.Minute) //nolint:errcheck // a second stop after the normal one finds none left
	for i := 1; i <= o.Consumers; i++ {
		if _, err := r.fleet.start(i); err != nil {
			return nil, err
		}
	}
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	count := int64(o.Rate * o.Duration.Seconds())
	producer := producerYAML
	if o.Stream == "kinesis" {
		producer = producerKinesisYAML
	}
	producedNow, wait, err := startProducer(pctx, o.Options, producer, vars, o.Profile.Phases[0], count, o.Seed)
	if err != nil {
		return nil, err
	}
	producerDone := make(chan error, 1)
	go func() { producerDone <- wait() }()
	fctx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); r.injectFaults(fctx) }()

	res := &Result{Profile: "chaos", Machine: machine(), Started: r.start, ProducerInProc: false}
	runErr := r.sample(ctx, res, producerDone, faultsDone, producedNow, r.stream.progress)
	stopFaults()
	<-faultsDone
	fmt.Fprintln(o.Progress)
	if err := r.fleet.stopAll(2 * time.Minute); err != nil && runErr == nil {
		runErr = err
	}
	r.fleet.sample(ctx)
	res.Seconds = time.Since(r.start).Seconds()
	res.Sent = count
	if !r.produced.Load() {
		res.Sent = producedNow() // cut short: what it had written, estimated from its rate
	}
	res.Consumers = r.fleet.stats()
	var read int64
	for _, s := range res.Consumers {
		read += s.Read
	}
	res.Settled = read
	res.Reread = max(0, read-count)
	if n := len(res.Series); n > 0 {
		res.MeanRate = float64(res.Series[n-1].Consumed) / res.Seconds
	}
	for _, s := range res.Series {
		res.PeakRate = max(res.PeakRate, s.Rate)
		res.MaxLag = max(res.MaxLag, s.Lag)
	}
	for _, s := range res.Consumers {
		res.PeakRSSMiB = max(res.PeakRSSMiB, s.PeakRSSMiB)
	}
	r.mu.Lock()
	for _, f := range r.faults {
		if !f.resolved && f.exceeded {
			f.RecoveredAfter = -1
		}
		res.Faults = append(res.Faults, *f)
	}
	r.mu.Unlock()
	return res, runErr
}

// injectFaults runs the schedule: a seeded pause, then the next class of a
// seeded order that covers every class before repeating one. It stops when
// ctx ends, or once the producer finished and MinFaults were injected.
func (r *chaosRun) injectFaults(ctx context.Context) {
	var order []string
	for n := 0; ; n++ {
		pause := r.o.EveryMin + time.Duration(r.rng.Int64N(int64(r.o.EveryMax-r.o.EveryMin)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if r.produced.Load() && n >= r.o.MinFaults {
			return
		}
		if len(order) == 0 {
			for _, i := range r.rng.Perm(len(r.plan.classes)) {
				order = append(order, r.plan.classes[i])
			}
		}
		class := order[0]
		order = order[1:]
		rec := &FaultRecord{Class: class, At: time.Since(r.start).Seconds(), active: true}
		r.mu.Lock()
		r.faults = append(r.faults, rec)
		r.mu.Unlock()
		began := time.Now()
		target, err := r.inject(ctx, class)
		r.mu.Lock()
		rec.Target, rec.Took, rec.active = target, time.Since(began).Seconds(), false
		if err != nil {
			rec.Err = err.Error()
		}
		r.mu.Unlock()
		fmt.Fprintf(r.o.Progress, "\nchaos: %6.1fs %s %s (%.1fs)%s\n", rec.At, class, target, rec.Took, errSuffix(rec.Err))
		var fatal *restartError
		if errors.As(err, &fatal) {
			r.fatal <- fmt.Errorf("%s of %s: %w (the run cannot drain without it; bring it back and rerun)", class, target, err)
			return
		}
	}
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

// inject applies one fault and returns what it hit.
func (r *chaosRun) inject(ctx context.Context, class string) (string, error) {
	switch class {
	case FaultKill9, FaultSIGTERM:
		ms := r.fleet.members(false, r.o.Consumers)
		if len(ms) == 0 {
			return "", errors.New("no live consumer to signal")
		}
		m := ms[r.rng.IntN(len(ms))]
		sig, grace := syscall.SIGKILL, time.Minute
		if class == FaultSIGTERM {
			sig, grace = syscall.SIGTERM, 2*time.Minute
		}
		target := fmt.Sprintf("consumer %d (pid %d)", m.slot, m.cmd.Process.Pid)
		stopErr := r.fleet.stop(m, sig, grace)
		n, err := r.fleet.start(m.slot)
		if err != nil {
			return target, errors.Join(stopErr, err)
		}
		return fmt.Sprintf("%s, restarted as pid %d", target, n.cmd.Process.Pid), stopErr
	case FaultRebalance:
		if added := r.fleet.members(true, r.o.Consumers); len(added) > 0 {
			m := added[0]
			return fmt.Sprintf("removed consumer %d (pid %d)", m.slot, m.cmd.Process.Pid), r.fleet.stop(m, syscall.SIGTERM, 2*time.Minute)
		}
		m, err := r.fleet.start(0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("added consumer %d (pid %d)", m.slot, m.cmd.Process.Pid), nil
	case FaultStoreStall:
		return stallServers(ctx, []server{r.plan.stall[r.rng.IntN(len(r.plan.stall))]}, r.o.Stall)
	case FaultStoreKill:
		return killServer(ctx, r.plan.kill[r.rng.IntN(len(r.plan.kill))])
	case FaultBrokerStall:
		return stallServers(ctx, r.plan.brokers, r.o.Stall)
	case FaultBrokerKill:
		return r.killBroker(ctx)
	case FaultSIGSTOP:
		return r.stopConsumer(ctx)
	case FaultSplit:
		if r.stream.tail == nil {
			return "", errors.New("split needs --stream kinesis")
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return r.stream.tail.split(sctx, r.rng)
	}
	return "", fmt.Errorf("unknown fault class %q", class)
}

// lockedWriter serializes writes from the sampler and the fault schedule.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
