package main

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

//go:embed demo.yaml
var demoPipeline []byte

func demoCmd(g *globalFlags, stderr io.Writer) *cobra.Command {
	var outDir string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded demo pipeline: generated CRM/ATS/email events into files",
		Long: `Run an embedded pipeline that generates realistic CRM, ATS and email events
(SLUICE_DEMO_RATE, default 5000/s; SLUICE_DEMO_COUNT, default 30000), decodes them,
writes them to <out>/events.jsonl and poison events to <out>/dead-letter.jsonl,
printing progress every second and a summary at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printConfig {
				_, err := cmd.OutOrStdout().Write(demoPipeline)
				return err
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
			getenv := func(k string) (string, bool) {
				if k == "SLUICE_OUT_DIR" {
					return outDir, true
				}
				return os.LookupEnv(k)
			}
			cfg, err := pipeline.Load("demo.yaml (embedded)", demoPipeline, registry(), getenv)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, cfg, outDir, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "out/demo", "directory for events.jsonl and dead-letter.jsonl")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the embedded pipeline and exit")
	return cmd
}

func runDemo(ctx context.Context, cfg *pipeline.Config, outDir string, log *slog.Logger, out io.Writer) error {
	promReg := prometheus.NewRegistry()
	p, err := pipeline.Build(ctx, cfg, registry(), pipeline.WithMetricsRegisterer(promReg), pipeline.WithLogger(log))
	if err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		if stopServer, err := pipeline.Serve(ctx, cfg.Metrics.Listen, p.Handler(promReg), log); err == nil {
			defer stopServer()
			fmt.Fprintf(out, "metrics: http://%s/metrics\n", cfg.Metrics.Listen)
		} else {
			fmt.Fprintf(out, "metrics: not served (%v)\n", err)
		}
	}
	fmt.Fprintf(out, "demo: %s → decode → %s (dead letters: %s)\n", "generate", filepath.Join(outDir, "events.jsonl"), filepath.Join(outDir, "dead-letter.jsonl"))
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(ctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-tick.C:
			st := p.Stats()
			fmt.Fprintf(out, "  %5.1fs  settled %7d  written %7d  dead-lettered %4d  (%.0f events/s)\n",
				time.Since(start).Seconds(), st.Read, st.Written, st.DeadLettered, float64(st.Read)/time.Since(start).Seconds())
		}
	}
	st := p.Stats()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "\nsummary: %d events in %s (%.0f/s): %d written, %d dead-lettered, %d dropped, %d abandoned\n",
		st.Read, elapsed.Round(time.Millisecond), float64(st.Read)/elapsed.Seconds(), st.Written, st.DeadLettered, st.Dropped, st.Abandoned)
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
		fmt.Fprintf(out, "  %-10s %-26s key=%-16s account=%s %d bytes\n", src, r.Get("type").String(), r.Get("key").String(), r.Get("account_id").String(), len(sc.Bytes()))
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
