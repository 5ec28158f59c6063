package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

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
			brokers := os.Getenv("SLUICE_KAFKA_BROKERS")
			mode, err := resolveDemoMode(mode, brokers)
			if err != nil {
				return err
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
			if err := cleanDemoOut(outDir); err != nil {
				return err
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

// resolveDemoMode turns --mode auto into the richest mode the environment
// (SLUICE_KAFKA_BROKERS, SLUICE_MONGO_URI, SLUICE_ES_URL) allows, and checks
// that an explicit mode has what it needs.
func resolveDemoMode(mode, brokers string) (string, error) {
	haveStores := os.Getenv("SLUICE_MONGO_URI") != "" && os.Getenv("SLUICE_ES_URL") != ""
	switch mode {
	case "auto":
		switch {
		case brokers != "" && haveStores:
			return "stores", nil
		case brokers != "":
			return "kafka", nil
		default:
			return "files", nil
		}
	case "stores":
		if brokers == "" || !haveStores {
			return "", errors.New("--mode stores needs SLUICE_KAFKA_BROKERS, SLUICE_MONGO_URI and SLUICE_ES_URL (run 'make testenv' and source .testenv/env)")
		}
	case "kafka":
		if brokers == "" {
			return "", errors.New("--mode kafka needs SLUICE_KAFKA_BROKERS (run 'make testenv' and source .testenv/env)")
		}
	case "files":
	default:
		return "", fmt.Errorf("--mode must be auto, files, kafka or stores, not %q", mode)
	}
	return mode, nil
}

// cleanDemoOut makes the output directory and removes what an earlier run
// left in it.
func cleanDemoOut(outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("demo output directory: %w", err)
	}
	for _, f := range []string{"events.jsonl", "dead-letter.jsonl", "stream.jsonl", "checkpoints"} {
		if err := os.RemoveAll(filepath.Join(outDir, f)); err != nil {
			return err
		}
	}
	return nil
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
