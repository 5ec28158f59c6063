package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

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
	var outDir, mode string
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
			if printConfig {
				out := cmd.OutOrStdout()
				if mode == "files" {
					_, err := out.Write(demoFiles)
					return err
				}
				consumer := demoConsumer
				if mode == "stores" {
					consumer = demoConsumerStores
				}
				fmt.Fprintf(out, "%s---\n%s", demoProducer, consumer)
				return nil
			}
			log, err := newLogger(g, stderr)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("demo output directory: %w", err)
			}
			for _, f := range []string{"events.jsonl", "dead-letter.jsonl"} {
				if err := os.Remove(filepath.Join(outDir, f)); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
			run := fmt.Sprintf("%d", time.Now().Unix())
			getenv := func(k string) (string, bool) {
				switch k {
				case "SLUICE_OUT_DIR":
					return outDir, true
				case "SLUICE_DEMO_TOPIC":
					return "demo.events." + run, true
				case "SLUICE_DEMO_GROUP":
					return "demo-" + run, true
				}
				return os.LookupEnv(k)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if mode == "files" {
				cfg, err := pipeline.Load("demo/files.yaml (embedded)", demoFiles, registry(), getenv)
				if err != nil {
					return err
				}
				return runDemo(ctx, []*pipeline.Config{cfg}, outDir, log, cmd.OutOrStdout())
			}
			producer, err := pipeline.Load("demo/producer.yaml (embedded)", demoProducer, registry(), getenv)
			if err != nil {
				return err
			}
			consumerName, consumerYAML := "demo/consumer.yaml (embedded)", demoConsumer
			if mode == "stores" {
				consumerName, consumerYAML = "demo/consumer-stores.yaml (embedded)", demoConsumerStores
			}
			consumer, err := pipeline.Load(consumerName, consumerYAML, registry(), getenv)
			if err != nil {
				return err
			}
			topic, _ := getenv("SLUICE_DEMO_TOPIC")
			if err := createTopic(ctx, brokers, topic, 12); err != nil {
				return err
			}
			return runDemo(ctx, []*pipeline.Config{producer, consumer}, outDir, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "out/demo", "directory for events.jsonl and dead-letter.jsonl")
	cmd.Flags().StringVar(&mode, "mode", "auto", "auto (stores when Kafka, MongoDB and Elasticsearch are set, kafka with Kafka only, else files), files, kafka or stores")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the embedded pipelines and exit")
	return cmd
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

// runDemo runs the pipelines together, printing progress every second. The
// last pipeline is the one that writes the stores; the ones before it feed
// it. When the feeders are done and the last one has settled as many events
// as they wrote, the demo stops it.
func runDemo(ctx context.Context, cfgs []*pipeline.Config, outDir string, log *slog.Logger, out io.Writer) error {
	promReg := prometheus.NewRegistry()
	var ps []*pipeline.Pipeline
	for _, cfg := range cfgs {
		p, err := pipeline.Build(ctx, cfg, registry(), pipeline.WithMetricsRegisterer(promReg), pipeline.WithLogger(log))
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	last := cfgs[len(cfgs)-1]
	if last.Metrics.Listen != "" {
		if stopServer, err := pipeline.Serve(ctx, last.Metrics.Listen, ps[len(ps)-1].Handler(promReg), log); err == nil {
			defer stopServer()
			fmt.Fprintf(out, "metrics: http://%s/metrics\n", last.Metrics.Listen)
		} else {
			fmt.Fprintf(out, "metrics: not served (%v)\n", err)
		}
	}
	var names []string
	for _, c := range cfgs {
		names = append(names, c.Name)
	}
	fmt.Fprintf(out, "demo: %s → %s (dead letters: %s)\n", strings.Join(names, " → "), filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))

	start := time.Now()
	feedersDone := make(chan error, 1)
	lastCtx, stopLast := context.WithCancel(ctx)
	defer stopLast()
	lastDone := make(chan error, 1)
	go func() { lastDone <- ps[len(ps)-1].Run(lastCtx) }()
	// One goroutine reports the feeders done, also when there are none:
	// feedersDone has room for exactly one report.
	go func() {
		var errs []error
		for _, p := range ps[:len(ps)-1] {
			if err := p.Run(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		feedersDone <- errors.Join(errs...)
	}()
	fed := int64(-1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
	for {
		select {
		case err := <-feedersDone:
			if err != nil {
				stopLast()
				<-lastDone
				return err
			}
			fed = 0
			for _, p := range ps[:len(ps)-1] {
				fed += p.Stats().Written + p.Stats().DeadLettered
			}
			if len(ps) == 1 {
				fed = -1
			}
			continue
		case runErr = <-lastDone:
		case <-tick.C:
			line := fmt.Sprintf("  %5.1fs", time.Since(start).Seconds())
			for i, p := range ps {
				st := p.Stats()
				line += fmt.Sprintf("  %s: %d settled, %d written, %d dead-lettered", cfgs[i].Name, st.Read, st.Written, st.DeadLettered)
			}
			fmt.Fprintln(out, line)
			if st := ps[len(ps)-1].Stats(); fed >= 0 && st.Read >= fed {
				stopLast()
			}
			continue
		}
		break
	}
	st := ps[len(ps)-1].Stats()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "\nsummary (%s): %d events in %s (%.0f/s): %d written, %d dead-lettered, %d dropped, %d abandoned\n",
		last.Name, st.Read, elapsed.Round(time.Millisecond), float64(st.Read)/elapsed.Seconds(), st.Written, st.DeadLettered, st.Dropped, st.Abandoned)
	if fed >= 0 && st.Read < fed {
		fmt.Fprintf(out, "warning: the feeders wrote %d events but only %d were settled before the demo stopped\n", fed, st.Read)
	}
	printSamples(out, filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))
	return runErr
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
	for sc.Scan() && len(seen) < 7 {
		src := gjson.GetBytes(sc.Bytes(), "source").String()
		if seen[src] {
			continue
		}
		seen[src] = true
		r := gjson.ParseBytes(sc.Bytes())
		key := r.Get("key").String()
		if key == "" { // a canonical event names its entity instead
			key = r.Get("entity.kind").String() + ":" + r.Get("entity.id").String()
		}
		fmt.Fprintf(out, "  %-10s %-26s %-28s account=%s %d bytes\n", src, r.Get("type").String(), key, r.Get("account_id").String(), len(sc.Bytes()))
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
