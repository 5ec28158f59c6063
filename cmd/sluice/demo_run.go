package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/pipeline"
)

// This file runs a demo plan: its feeders, its consumer and what runs
// alongside them, until the consumer has settled what they fed.

// demoPlan is what one demo run starts: the feeders that fill the stream
// and the consumer that drains it into the outputs.
type demoPlan struct {
	registry *pipeline.Registry
	feeders  []demoFeeder
	consumer *pipeline.Config
	// consumerLast starts the consumer only once every feeder is done, for
	// a consumer that reads a file to its end rather than following it.
	consumerLast bool
	// alongside runs beside the pipelines, given the context that ends
	// with them; an error from it stops the demo. The consumer is stopped
	// (or, with consumerLast, started) only once it has returned.
	alongside func(context.Context) error
	// report prints what the feeders' counterparts saw (the replay's
	// answers), before the consumer's summary.
	report func(io.Writer)
	// drained reports, once the feeders are done, whether the consumer
	// settled everything they wrote, and where it stands: its group's
	// committed offsets against the topic's end offsets. Nil: it has read
	// as many events as the feeders wrote.
	drained func(context.Context) (bool, string, error)
}

// groupDrained is the demo's drained check on Kafka: every partition of
// topic committed by group up to its end offset, read from the brokers.
// Counting events read would stop early when a rebalance redelivers some.
func groupDrained(brokers, group, topic string) func(context.Context) (bool, string, error) {
	client := kafkagroup.NewClient(strings.Split(brokers, ","), nil)
	return func(ctx context.Context) (bool, string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		p, err := kafkagroup.Read(ctx, client, group, topic)
		return err == nil && p.Drained(), p.String(), err
	}
}

// demoFeeder is a pipeline that fills the stream.
type demoFeeder struct {
	cfg *pipeline.Config
	// expect, when above zero, is how many events the feeder writes
	// before the demo stops it: a connector polls forever, a replay does
	// not. Zero: the feeder ends by itself.
	expect int64
	// hold, when set, keeps the feeder running past expect until it is
	// closed: the webhooks source must still answer the replay's last
	// requests after its events are in.
	hold <-chan struct{}
}

// demoFeederTimeout bounds how long a feeder with an expected count may
// take, so a connector that falls short fails the demo instead of hanging.
const demoFeederTimeout = 2 * time.Minute

// runDemo runs the feeders together with the consumer, printing progress
// every second. Once every feeder is done and the consumer has settled
// everything they wrote (plan.drained), the demo stops the consumer.
func runDemo(ctx context.Context, plan demoPlan, outDir string, log *slog.Logger, out io.Writer) error {
	promReg := prometheus.NewRegistry()
	r, err := buildDemoRun(ctx, plan, promReg, log)
	if err != nil {
		return err
	}
	if stopServer := r.serveMetrics(ctx, promReg, out); stopServer != nil {
		defer stopServer()
	}
	printDemoBanner(out, plan, outDir)
	r.start(ctx)
	// Whatever ends the demo, everything it started is stopped and waited
	// for before it reports or returns.
	defer r.drain()
	consumerErr, err := r.wait(out)
	if err != nil {
		return err
	}
	r.drain()
	r.summarize(out, outDir)
	return consumerErr
}

// demoRun is one run of the demo: the pipelines of its plan and where each
// stands. A done channel is nil while what it reports on is not running
// (not started yet, or its one report was received), so a select never
// waits on it and drain skips it.
type demoRun struct {
	plan     demoPlan
	log      *slog.Logger
	feeders  []*pipeline.Pipeline
	consumer *pipeline.Pipeline
	began    time.Time

	runCtx, consumerCtx   context.Context
	stopAll, stopConsumer context.CancelFunc

	feedersDone, alongsideDone, consumerDone chan error

	// fed is how many events the feeders wrote, once they are done, when
	// the demo is to stop the consumer after it settled them all
	// (stopWhenDrained). Otherwise the consumer ends by itself at the end
	// of its input (no feeders, or plan.consumerLast).
	fed             int64
	stopWhenDrained bool
}

// buildDemoRun builds every pipeline of the plan on one metrics registry.
func buildDemoRun(ctx context.Context, plan demoPlan, promReg *prometheus.Registry, log *slog.Logger) (*demoRun, error) {
	build := func(cfg *pipeline.Config) (*pipeline.Pipeline, error) {
		return pipeline.Build(ctx, cfg, plan.registry, pipeline.WithMetricsRegisterer(promReg), pipeline.WithLogger(log))
	}
	r := &demoRun{plan: plan, log: log}
	for _, f := range plan.feeders {
		p, err := build(f.cfg)
		if err != nil {
			return nil, err
		}
		r.feeders = append(r.feeders, p)
	}
	consumer, err := build(plan.consumer)
	if err != nil {
		return nil, err
	}
	r.consumer = consumer
	return r, nil
}

// serveMetrics serves the consumer's metrics (and tap) when its config
// names an address; it returns the server's stop, or nil.
func (r *demoRun) serveMetrics(ctx context.Context, promReg *prometheus.Registry, out io.Writer) func() {
	listen := r.plan.consumer.Metrics.Listen
	if listen == "" {
		return nil
	}
	stopServer, err := pipeline.Serve(ctx, listen, withTap(r.consumer, r.consumer.Handler(promReg)), r.log)
	if err != nil {
		fmt.Fprintf(out, "metrics: not served (%v)\n", err)
		return nil
	}
	fmt.Fprintf(out, "metrics: http://%s/metrics\n", listen)
	printWatchHint(out, r.plan.consumer)
	return stopServer
}

// printDemoBanner names the pipelines and where their output goes.
func printDemoBanner(out io.Writer, plan demoPlan, outDir string) {
	var names []string
	for _, f := range plan.feeders {
		names = append(names, f.cfg.Name)
	}
	from := ""
	if len(names) > 0 {
		from = strings.Join(names, " + ") + " → "
	}
	fmt.Fprintf(out, "demo: %s%s → %s (dead letters: %s)\n", from, plan.consumer.Name, filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))
}

// start runs the consumer (unless it comes last), every feeder, and what
// runs alongside them.
func (r *demoRun) start(ctx context.Context) {
	r.began = time.Now()
	r.runCtx, r.stopAll = context.WithCancel(ctx)
	r.consumerCtx, r.stopConsumer = context.WithCancel(r.runCtx)
	if !r.plan.consumerLast {
		r.startConsumer()
	}
	// One goroutine per feeder; feedersDone gets exactly one report.
	r.feedersDone = make(chan error, 1)
	go func() {
		errs := make(chan error, len(r.feeders))
		for i, p := range r.feeders {
			go func() { errs <- runFeeder(r.runCtx, p, r.plan.feeders[i]) }()
		}
		var all []error
		for range r.feeders {
			if err := <-errs; err != nil {
				all = append(all, err)
			}
		}
		r.feedersDone <- errors.Join(all...)
	}()
	if r.plan.alongside != nil {
		r.alongsideDone = make(chan error, 1)
		go func() { r.alongsideDone <- r.plan.alongside(r.runCtx) }()
	}
}

func (r *demoRun) startConsumer() {
	r.consumerDone = make(chan error, 1)
	go func() { r.consumerDone <- r.consumer.Run(r.consumerCtx) }()
}

// wait follows the run until the consumer ends and returns its error
// (consumerErr), or returns the error of a feeder or of what runs
// alongside (err) as soon as one fails.
func (r *demoRun) wait(out io.Writer) (consumerErr, err error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-r.alongsideDone:
			r.alongsideDone = nil
			if err != nil {
				return nil, err
			}
			r.startConsumerIfLast()
		case err := <-r.feedersDone:
			r.feedersDone = nil
			if err != nil {
				return nil, err
			}
			r.feedersFinished()
			r.startConsumerIfLast()
		case err := <-r.consumerDone:
			r.consumerDone = nil
			return err, nil
		case <-tick.C:
			r.progress(out)
		}
	}
}

// startConsumerIfLast starts a consumer that comes last once the feeders
// and what runs alongside are done.
func (r *demoRun) startConsumerIfLast() {
	if r.plan.consumerLast && r.feedersDone == nil && r.alongsideDone == nil {
		r.startConsumer()
	}
}

// feedersFinished counts what the feeders wrote: the consumer is stopped
// once it settled that many (unless it ends by itself).
func (r *demoRun) feedersFinished() {
	if len(r.feeders) == 0 || r.plan.consumerLast {
		return // the consumer ends by itself at the end of its input
	}
	r.fed, r.stopWhenDrained = 0, true
	for _, p := range r.feeders {
		r.fed += p.Stats().Written + p.Stats().DeadLettered
	}
}

// progress prints one line of counts and stops the consumer once it has
// settled everything fed.
func (r *demoRun) progress(out io.Writer) {
	line := fmt.Sprintf("  %5.1fs", time.Since(r.began).Seconds())
	for i, p := range r.feeders {
		line += fmt.Sprintf("  %s: %d written", r.plan.feeders[i].cfg.Name, p.Stats().Written)
	}
	st := r.consumer.Stats()
	line += fmt.Sprintf("  %s: %d settled, %d written, %d dead-lettered", r.plan.consumer.Name, st.Read, st.Written, st.DeadLettered)
	fmt.Fprintln(out, line)
	// What runs alongside (webhook deliveries) may still be reporting
	// after its events are in: wait for it too.
	if r.stopWhenDrained && r.alongsideDone == nil && demoDrained(r.runCtx, r.plan, st.Read, r.fed, r.log) {
		r.stopConsumer()
	}
}

// drain stops everything the run started and waits for each to return.
func (r *demoRun) drain() {
	if r.stopAll == nil {
		return // never started
	}
	r.stopAll()
	for _, done := range []*chan error{&r.feedersDone, &r.alongsideDone, &r.consumerDone} {
		if *done != nil {
			<-*done
			*done = nil
		}
	}
}

// summarize prints the plan's report, the consumer's counts and samples.
func (r *demoRun) summarize(out io.Writer, outDir string) {
	if r.plan.report != nil {
		r.plan.report(out)
	}
	st := r.consumer.Stats()
	elapsed := time.Since(r.began)
	fmt.Fprintf(out, "\nsummary (%s): %d events in %s (%.0f/s): %d written, %d dead-lettered, %d dropped, %d abandoned\n",
		r.plan.consumer.Name, st.Read, elapsed.Round(time.Millisecond), float64(st.Read)/elapsed.Seconds(), st.Written, st.DeadLettered, st.Dropped, st.Abandoned)
	if r.stopWhenDrained && st.Read < r.fed {
		fmt.Fprintf(out, "warning: the feeders wrote %d events but only %d were settled before the demo stopped\n", r.fed, st.Read)
	}
	printSamples(out, filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))
}

// demoDrained asks plan.drained, or without one compares the events read
// with the events fed.
func demoDrained(ctx context.Context, plan demoPlan, read, fed int64, log *slog.Logger) bool {
	if plan.drained == nil {
		return read >= fed
	}
	done, where, err := plan.drained(ctx)
	if err != nil {
		log.Debug("demo: reading the consumer group's progress", "err", err)
	}
	if !done {
		log.Debug("demo: consumer not drained yet", "progress", where)
	}
	return done
}

// released reports whether hold is nil or closed.
func released(hold <-chan struct{}) bool {
	if hold == nil {
		return true
	}
	select {
	case <-hold:
		return true
	default:
		return false
	}
}

// runFeeder runs one feeder: to its end, or, with an expected count, until
// it has written that many events (then it is stopped, which saves its
// checkpoints) or the feeder timeout passes.
func runFeeder(ctx context.Context, p *pipeline.Pipeline, f demoFeeder) error {
	if f.expect <= 0 {
		return p.Run(ctx)
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(fctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(demoFeederTimeout)
	for {
		select {
		case err := <-done:
			if err == nil && ctx.Err() == nil && p.Stats().Written+p.Stats().DeadLettered < f.expect {
				err = fmt.Errorf("%s ended after %d of the %d recorded events", f.cfg.Name, p.Stats().Written+p.Stats().DeadLettered, f.expect)
			}
			return err
		case <-deadline:
			stop()
			<-done
			st := p.Stats()
			return fmt.Errorf("%s wrote %d of the %d recorded events in %s", f.cfg.Name, st.Written+st.DeadLettered, f.expect, demoFeederTimeout)
		case <-tick.C:
			if st := p.Stats(); st.Written+st.DeadLettered >= f.expect && released(f.hold) {
				stop()
				return <-done
			}
		}
	}
}
