package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/bench"
)

// benchFlags are `sluice bench`'s flags.
type benchFlags struct {
	profile, config, out string
	stream, cpuprofile   string
	memprofile           string
	duration, drain      time.Duration
	count                int64
	duplicates, poison   float64
	seed                 uint64
	keep                 bool
	chaos                chaosFlags
}

// benchCmd is `sluice bench`: its help, its flags, and run.
func benchCmd(g *globalFlags, stderr io.Writer) *cobra.Command {
	var o benchFlags
	cmd := &cobra.Command{
		Use:   "bench --profile peak|burst|max|engine|chaos",
		Short: "Drive a real pipeline with the generate workload and audit the stores",
		Long: `Drive a consumer pipeline with the generate workload through Kafka
(SLUICE_KAFKA_BROKERS) or, with --stream kinesis, Kinesis (SLUICE_KINESIS_ENDPOINT;
'make testenv' and source .testenv/env sets both) and measure it:
throughput, end-to-end latency (HDR histogram, event time to acked), consumer
lag, CPU seconds per million events and peak RSS of the consumer, time per stage.
Every run ends with an audit read back from the stores; lost or duplicated
events make it exit 1. Writes results.json and chart.html to --out. When the
run ends (also on failure or Ctrl-C) it deletes what it made for itself: the
topic or stream, the consumer group (Kinesis: its leases), and the collections
and indices the audit read whose names hold the run's stamp (${BENCH_GROUP});
a fixed collection or index of a --config is never deleted. --keep keeps them
all; the report's cleanup line names what was deleted or kept.

Profiles: peak (200k events/min for --duration), burst (1M events/min for 60s,
then 200k/min for --duration while lag recovers), max (--count events as fast as
they go), engine (--count events through generate → decode → discard, no I/O),
chaos (--consumers 'sluice run' processes in one Kafka group, or sharing a
Kinesis stream's leases with --stream kinesis, --rate events/s for --duration,
and a seeded fault schedule: --faults kill9,sigterm,rebalance,sigstop,
store-stall,store-kill,broker-stall,broker-kill (Kafka, 3+ brokers),split
(Kinesis) every --fault-every; server faults signal the pids in --pid-dir and
restart a killed server with --restart-cmd NAME=COMMAND; a fault that cannot be
injected is reported and skipped, one that does not apply to the stream is
refused). The chaos run ends when the group's committed offsets reach the
topic's end offsets (Kinesis: every shard, closed parents included, checkpointed
at its end), then prints the fault timeline with each recovery, events re-read,
peak RSS per consumer and the audit (Kinesis: also the per-key order across
split shards and checkpoints that moved back); it exits 1 on any lost,
duplicated or out-of-order event or when it did not drain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, g, stderr) },
	}
	f := cmd.Flags()
	f.StringVar(&o.profile, "profile", "peak", "peak, burst, max, engine or chaos")
	f.StringVar(&o.cpuprofile, "cpuprofile", "", "write the consumer's CPU profile here (go tool pprof)")
	f.StringVar(&o.memprofile, "memprofile", "", "write an allocation profile of the process here when the run ends (go tool pprof; -ignore 'bench\\.Run' leaves the audit out)")
	f.StringVar(&o.stream, "stream", "kafka", "the stream between producer and consumer: kafka or kinesis (SLUICE_KINESIS_ENDPOINT)")
	f.DurationVar(&o.duration, "duration", 60*time.Second, "how long peak runs (and burst's recovery)")
	f.Int64Var(&o.count, "count", 1000000, "events for max and engine")
	f.StringVarP(&o.config, "config", "c", "", "consumer pipeline YAML (default: kafka → decode → file)")
	f.StringVar(&o.out, "out", "out/bench", "directory for the consumer's files, results.json and chart.html")
	f.Float64Var(&o.duplicates, "duplicates", 0.02, "share of events sent twice")
	f.Float64Var(&o.poison, "poison", 0.001, "share of malformed events (must be dead-lettered)")
	f.Uint64Var(&o.seed, "seed", 1, "workload seed")
	f.DurationVar(&o.drain, "drain", 5*time.Minute, "how long the consumer may take to catch up after the load ends")
	f.BoolVar(&o.keep, "keep", false, "keep the run's topic or stream, consumer group (Kinesis: its leases) and per-run collections and indices for inspection; by default they are deleted when the run ends")
	o.chaos.register(cmd)
	return cmd
}

// run runs the profile the flags ask for: the engine alone, a chaos run,
// or a measured run of a child producer and this process's consumer.
func (o *benchFlags) run(cmd *cobra.Command, g *globalFlags, stderr io.Writer) error {
	log, err := newLogger(g, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	if o.profile == "engine" {
		r, err := bench.RunEngine(ctx, o.count)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "engine: %d events in %.2fs: %.0f events/s, %.2f CPU-s per million events, %.1f allocs/event, %.0f B/event\n",
			r.Events, r.Seconds, r.EventsPerSec, r.CPUPerMillion, r.AllocsPerEvent, r.BytesPerEvent)
		return nil
	}
	opts := bench.Options{
		Registry: registry, Stream: o.stream,
		Brokers: os.Getenv("SLUICE_KAFKA_BROKERS"), KinesisEndpoint: os.Getenv("SLUICE_KINESIS_ENDPOINT"),
		OutDir: o.out, Duplicates: o.duplicates, Poison: o.poison, Seed: o.seed, Drain: o.drain,
		Progress: stderr, Logger: log, Keep: o.keep,
	}
	if o.profile == "chaos" {
		return runChaos(ctx, cmd, o.chaos, opts, o.config, o.duration)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if opts.Profile, err = bench.NewProfile(o.profile, o.duration, o.count); err != nil {
		return err
	}
	if opts.Binary, err = sluiceBinary(); err != nil {
		return err
	}
	if o.config != "" {
		if opts.ConsumerConfig, err = os.ReadFile(o.config); err != nil {
			return err
		}
		opts.ConsumerFile = o.config
	}
	res, runErr := bench.Run(ctx, opts)
	if o.memprofile != "" {
		// Written before the report, so it holds the run and its audit
		// (bench.Run's own stacks tell the audit apart).
		if err := writeAllocsProfile(o.memprofile); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return reportRun(out, o.out, res, runErr, bench.WriteTable)
}

// reportRun prints a finished run with print, writes its results.json and
// chart.html into dir, and returns the run's error, or an error when the
// audit found lost or duplicated events. A run that produced no result
// returns its error alone.
func reportRun(out io.Writer, dir string, res *bench.Result, runErr error, print func(io.Writer, *bench.Result)) error {
	if res == nil {
		return runErr
	}
	print(out, res)
	if err := bench.WriteJSON(filepath.Join(dir, "results.json"), res); err != nil {
		return err
	}
	if err := bench.WriteHTML(filepath.Join(dir, "chart.html"), res); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if !res.Audit.OK() {
		return errors.New("the audit found lost, duplicated or out-of-order events, or a checkpoint that moved back")
	}
	return nil
}
