package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/pipeline"
)

//go:embed demo/files.yaml
var demoFiles []byte

//go:embed demo/producer.yaml
var demoProducer []byte

//go:embed demo/consumer.yaml
var demoConsumer []byte

//go:embed demo/consumer-stores.yaml
var demoConsumerStores []byte

func demoCmd(g *globalFlags, stderr io.Writer) *cobra.Command {
	var outDir, mode, source string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded demo: generated CRM/ATS/email events through Kafka into the stores",
		Long: `Run the embedded demo pipelines.

With the local stack (as 'make demo' runs it after 'make testenv'): a producer
pipeline writes generated CRM, ATS and email events to a fresh 12-partition
Kafka topic, and a consumer pipeline reads it in a consumer group, decodes, maps
them to canonical events, drops duplicates, and writes MongoDB, Elasticsearch
and <out>/events.jsonl, with malformed events in <out>/dead-letter.jsonl.
With Kafka only, the consumer writes the files; without Kafka, one pipeline does
generate → decode → files.

SLUICE_DEMO_RATE (default 5000/s) and SLUICE_DEMO_COUNT (default 30000) size it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			brokers, haveKafka := os.LookupEnv("SLUICE_KAFKA_BROKERS")
			haveStores := os.Getenv("SLUICE_MONGO_URI") != "" && os.Getenv("SLUICE_ES_URL") != ""
			switch mode {
			case "auto":
				switch {
				case haveKafka && brokers != "" && haveStores:
					mode = "stores"
				case haveKafka && brokers != "":
					mode = "kafka"
				default:
					mode = "files"
				}
			case "stores":
				if brokers == "" || !haveStores {
					return errors.New("--mode stores needs SLUICE_KAFKA_BROKERS, SLUICE_MONGO_URI and SLUICE_ES_URL (run 'make testenv' and source .testenv/env)")
				}
			case "kafka":
				if brokers == "" {
					return errors.New("--mode kafka needs SLUICE_KAFKA_BROKERS (run 'make testenv' and source .testenv/env)")
				}
			case "files":
			default:
				return fmt.Errorf("--mode must be auto, files, kafka or stores, not %q", mode)
			}
			if source != "recorded" && source != "generated" {
				return fmt.Errorf("--source must be recorded or generated, not %q", source)
			}
			if printConfig {
				return printDemoConfig(cmd.OutOrStdout(), source, mode)
			}
			log, err := newLogger(g, stderr)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("demo output directory: %w", err)
			}
			for _, f := range []string{"events.jsonl", "dead-letter.jsonl", "stream.jsonl", "checkpoints"} {
				if err := os.RemoveAll(filepath.Join(outDir, f)); err != nil {
					return err
				}
			}
			run := fmt.Sprintf("%d", time.Now().Unix())
			vars := map[string]string{"SLUICE_OUT_DIR": outDir, "SLUICE_DEMO_TOPIC": "demo.events." + run, "SLUICE_DEMO_GROUP": "demo-" + run}
			getenv := func(k string) (string, bool) {
				if v, ok := vars[k]; ok {
					return v, true
				}
				return os.LookupEnv(k)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var plan demoPlan
			if source == "recorded" {
				rp, err := startReplay(log)
				if err != nil {
					return err
				}
				defer rp.close()
				maps.Copy(vars, rp.vars())
				if plan, err = rp.plan(mode, getenv); err != nil {
					return err
				}
			} else if plan, err = generatedPlan(mode, getenv); err != nil {
				return err
			}
			if mode != "files" {
				if err := createTopic(ctx, brokers, vars["SLUICE_DEMO_TOPIC"], 12); err != nil {
					return err
				}
				plan.drained = groupDrained(brokers, vars["SLUICE_DEMO_GROUP"], vars["SLUICE_DEMO_TOPIC"])
			}
			return runDemo(ctx, plan, outDir, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "out/demo", "directory for events.jsonl and dead-letter.jsonl")
	cmd.Flags().StringVar(&mode, "mode", "auto", "auto (stores when Kafka, MongoDB and Elasticsearch are set, kafka with Kafka only, else files), files, kafka or stores")
	cmd.Flags().StringVar(&source, "source", "recorded", "recorded (replay recorded vendor payloads through the connectors) or generated (synthetic events at SLUICE_DEMO_RATE)")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the embedded pipelines and exit")
	return cmd
}

// generatedPlan is the demo of synthetic events: generate → Kafka →
// consumer, or generate → files alone without Kafka.
func generatedPlan(mode string, getenv func(string) (string, bool)) (demoPlan, error) {
	reg := registry()
	if mode == "files" {
		cfg, err := pipeline.Load("demo/files.yaml (embedded)", demoFiles, reg, getenv)
		return demoPlan{registry: reg, consumer: cfg}, err
	}
	producer, err := pipeline.Load("demo/producer.yaml (embedded)", demoProducer, reg, getenv)
	if err != nil {
		return demoPlan{}, err
	}
	name, doc := consumerYAML(mode)
	consumer, err := pipeline.Load(name, doc, reg, getenv)
	return demoPlan{registry: reg, feeders: []demoFeeder{{cfg: producer}}, consumer: consumer}, err
}

// consumerYAML is the embedded consumer that reads the demo topic.
func consumerYAML(mode string) (string, []byte) {
	if mode == "stores" {
		return "demo/consumer-stores.yaml (embedded)", demoConsumerStores
	}
	return "demo/consumer.yaml (embedded)", demoConsumer
}

// createTopic makes the demo's topic, so the demo works on clusters that do
// not create topics on first use.
func createTopic(ctx context.Context, brokers, topic string, partitions int) error {
	c := &kafkago.Client{Addr: kafkago.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("create demo topic %s: %w", topic, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("create demo topic %s: %w", topic, err)
	}
	return nil
}

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
	build := func(cfg *pipeline.Config) (*pipeline.Pipeline, error) {
		return pipeline.Build(ctx, cfg, plan.registry, pipeline.WithMetricsRegisterer(promReg), pipeline.WithLogger(log))
	}
	var feeders []*pipeline.Pipeline
	for _, f := range plan.feeders {
		p, err := build(f.cfg)
		if err != nil {
			return err
		}
		feeders = append(feeders, p)
	}
	consumer, err := build(plan.consumer)
	if err != nil {
		return err
	}
	if plan.consumer.Metrics.Listen != "" {
		if stopServer, err := pipeline.Serve(ctx, plan.consumer.Metrics.Listen, withTap(consumer, consumer.Handler(promReg)), log); err == nil {
			defer stopServer()
			fmt.Fprintf(out, "metrics: http://%s/metrics\n", plan.consumer.Metrics.Listen)
			printWatchHint(out, plan.consumer)
		} else {
			fmt.Fprintf(out, "metrics: not served (%v)\n", err)
		}
	}
	var names []string
	for _, f := range plan.feeders {
		names = append(names, f.cfg.Name)
	}
	from := ""
	if len(names) > 0 {
		from = strings.Join(names, " + ") + " → "
	}
	fmt.Fprintf(out, "demo: %s%s → %s (dead letters: %s)\n", from, plan.consumer.Name, filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))

	start := time.Now()
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	consumerCtx, stopConsumer := context.WithCancel(runCtx)
	defer stopConsumer()
	consumerDone := make(chan error, 1)
	consumerRunning := false
	startConsumer := func() {
		consumerRunning = true
		go func() { consumerDone <- consumer.Run(consumerCtx) }()
	}
	if !plan.consumerLast {
		startConsumer()
	}
	// One goroutine per feeder; feedersDone gets exactly one report.
	feedersDone := make(chan error, 1)
	go func() {
		errs := make(chan error, len(feeders))
		for i, p := range feeders {
			go func() { errs <- runFeeder(runCtx, p, plan.feeders[i]) }()
		}
		var all []error
		for range feeders {
			if err := <-errs; err != nil {
				all = append(all, err)
			}
		}
		feedersDone <- errors.Join(all...)
	}()
	alongsideDone := make(chan error, 1)
	alongsideRunning := plan.alongside != nil
	if alongsideRunning {
		go func() { alongsideDone <- plan.alongside(runCtx) }()
	}
	fed := int64(-1)
	feedersRunning := true
	// Whatever ends the demo, everything it started is stopped and waited
	// for before it reports or returns.
	drain := func() {
		stopAll()
		if feedersRunning {
			<-feedersDone
			feedersRunning = false
		}
		if alongsideRunning {
			<-alongsideDone
			alongsideRunning = false
		}
		if consumerRunning {
			<-consumerDone
			consumerRunning = false
		}
	}
	defer drain()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
	for {
		select {
		case err := <-alongsideDone:
			alongsideRunning = false
			if err != nil {
				return err
			}
			if plan.consumerLast && !feedersRunning {
				startConsumer()
			}
			continue
		case err := <-feedersDone:
			feedersRunning = false
			if err != nil {
				return err
			}
			fed = 0
			for _, p := range feeders {
				fed += p.Stats().Written + p.Stats().DeadLettered
			}
			if plan.consumerLast && !alongsideRunning {
				startConsumer()
			}
			if len(feeders) == 0 || plan.consumerLast {
				fed = -1 // the consumer ends by itself at the end of its input
			}
			continue
		case runErr = <-consumerDone:
			consumerRunning = false
		case <-tick.C:
			line := fmt.Sprintf("  %5.1fs", time.Since(start).Seconds())
			for i, p := range feeders {
				line += fmt.Sprintf("  %s: %d written", plan.feeders[i].cfg.Name, p.Stats().Written)
			}
			st := consumer.Stats()
			line += fmt.Sprintf("  %s: %d settled, %d written, %d dead-lettered", plan.consumer.Name, st.Read, st.Written, st.DeadLettered)
			fmt.Fprintln(out, line)
			// What runs alongside (webhook deliveries) may still be
			// reporting after its events are in: wait for it too.
			if fed >= 0 && !alongsideRunning && demoDrained(runCtx, plan, st.Read, fed, log) {
				stopConsumer()
			}
			continue
		}
		break
	}
	drain()
	if plan.report != nil {
		plan.report(out)
	}
	st := consumer.Stats()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "\nsummary (%s): %d events in %s (%.0f/s): %d written, %d dead-lettered, %d dropped, %d abandoned\n",
		plan.consumer.Name, st.Read, elapsed.Round(time.Millisecond), float64(st.Read)/elapsed.Seconds(), st.Written, st.DeadLettered, st.Dropped, st.Abandoned)
	if fed >= 0 && st.Read < fed {
		fmt.Fprintf(out, "warning: the feeders wrote %d events but only %d were settled before the demo stopped\n", fed, st.Read)
	}
	printSamples(out, filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))
	return runErr
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

// printSamples shows one event per source vendor and one dead letter, so a
// person sees what flowed.
func printSamples(out io.Writer, eventsPath, deadPath string) {
	f, err := os.Open(eventsPath)
	if err != nil {
		return
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	fmt.Fprintln(out, "\nsample events (one per source):")
	bounces := map[string]int{} // email bounces by source:kind
	for sc.Scan() {
		src := gjson.GetBytes(sc.Bytes(), "source").String()
		if k := gjson.GetBytes(sc.Bytes(), "bounce.kind"); k.Exists() {
			bounces[src+":"+k.Str]++
		}
		if seen[src] {
			continue
		}
		seen[src] = true
		r := gjson.ParseBytes(sc.Bytes())
		key := r.Get("key").String()
		if key == "" { // a canonical event names its entity instead
			key = r.Get("entity.kind").String() + ":" + r.Get("entity.id").String()
		}
		bounce := ""
		if k := r.Get("bounce.kind"); k.Exists() {
			bounce = " bounce=" + k.Str
		}
		fmt.Fprintf(out, "  %-10s %-26s %-28s account=%s%s %d bytes\n", src, r.Get("type").String(), key, r.Get("account_id").String(), bounce, len(sc.Bytes()))
	}
	if len(bounces) > 0 {
		kinds := make([]string, 0, len(bounces))
		for k, n := range bounces {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(out, "email bounces (source:kind count): %s\n", strings.Join(kinds, ", "))
	}
	if d, err := os.Open(deadPath); err == nil {
		defer d.Close()
		ds := bufio.NewScanner(d)
		ds.Buffer(make([]byte, 64<<10), 16<<20)
		if ds.Scan() {
			r := gjson.ParseBytes(ds.Bytes())
			fmt.Fprintf(out, "\nsample dead letter: id=%s component=%s\n  reason: %s\n", r.Get("id"), r.Get("component"), r.Get("reason"))
		}
	}
}
