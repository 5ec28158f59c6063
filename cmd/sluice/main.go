// Command sluice runs stream-processing pipelines declared in YAML.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sluicehq/sluice/pipeline"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func execute(args []string, stdout, stderr io.Writer) int {
	var g globalFlags
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "Stream processing for high-volume business events",
		Long:          "sluice runs pipelines declared in YAML: one source, transforms, sinks and a dead-letter sink.\nSee docs/ARCHITECTURE.md and examples/.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "auto", "text, json, or auto (text on a terminal, JSON otherwise)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(runCmd(&g, stderr), validateCmd(stdout), versionCmd(stdout), componentsCmd(stdout), demoCmd(&g, stderr), benchCmd(&g, stderr))
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "sluice:", err)
		var exit exitCode
		if errors.As(err, &exit) {
			return int(exit)
		}
		return 1
	}
	return 0
}

type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newLogger(g *globalFlags, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := g.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text, json or auto, not %q", g.logFormat)
}

func runCmd(g *globalFlags, stderr io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run a pipeline until SIGINT/SIGTERM or until its source is exhausted",
		Long: `Run a pipeline. On SIGINT or SIGTERM it stops reading, lets in-flight batches
finish within delivery.shutdown_timeout, acks only what was written, and exits 0.
A failure that stops the pipeline (a permanent error with no dead_letter sink)
exits 1 with the batch unacked, so nothing is lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g, stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runPipeline(ctx, file, log, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "pipeline YAML file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runPipeline(ctx context.Context, file string, log *slog.Logger, summary io.Writer) error {
	cfg, err := pipeline.LoadFile(file, registry(), os.LookupEnv)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "warning", warningText(w))
	}
	promReg := prometheus.NewRegistry()
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := pipeline.Build(ctx, cfg, registry(), pipeline.WithLogger(log), pipeline.WithMetricsRegisterer(promReg))
	if err != nil {
		return err
	}
	if cfg.Metrics.Listen != "" {
		stopServer, err := pipeline.Serve(ctx, cfg.Metrics.Listen, p.Handler(promReg), log)
		if err != nil {
			return err
		}
		defer stopServer()
	}
	log.Info("pipeline starting", "pipeline", cfg.Name, "file", file, "version", buildVersion())
	start := time.Now()
	runErr := p.Run(ctx)
	st := p.Stats()
	elapsed := time.Since(start)
	rate := float64(st.Read) / max(elapsed.Seconds(), 1e-9)
	log.Info("pipeline stopped", "read", st.Read, "written", st.Written, "dropped", st.Dropped,
		"dead_lettered", st.DeadLettered, "abandoned", st.Abandoned, "elapsed", elapsed.Round(time.Millisecond), "events_per_second", int64(rate))
	fmt.Fprintf(summary, "%s: %d events settled in %s (%.0f/s): %d written, %d dropped, %d dead-lettered, %d abandoned unacked\n",
		cfg.Name, st.Read, elapsed.Round(time.Millisecond), rate, st.Written, st.Dropped, st.DeadLettered, st.Abandoned)
	return runErr
}

func validateCmd(stdout io.Writer) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -c FILE [-c FILE...]",
		Short: "Check pipeline files and report every mistake with file:line and key",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files = append(files, args...)
			if len(files) == 0 {
				return errors.New("validate needs at least one file (-c FILE)")
			}
			failed := 0
			for _, f := range files {
				cfg, err := pipeline.LoadFile(f, registry(), os.LookupEnv)
				if err != nil {
					failed++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				for _, w := range cfg.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), warningText(w))
				}
				fmt.Fprintf(stdout, "%s: ok\n", f)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d files have errors", failed, len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "config", "c", nil, "pipeline YAML file (repeatable)")
	return cmd
}

// warningText is a config warning as validate prints it:
// "file:line: key: warning: message".
func warningText(w *pipeline.ConfigError) string {
	c := *w
	c.Msg = "warning: " + c.Msg
	return c.Error()
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(stdout, "sluice", buildVersion())
		},
	}
}

func componentsCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "components",
		Short: "List the sources, transforms and sinks this binary has",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			r := registry()
			for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindTransform, pipeline.KindSink} {
				fmt.Fprintf(stdout, "%ss:\n", k)
				for _, n := range r.Names(k) {
					fmt.Fprintf(stdout, "  %-14s %s\n", n, r.Summary(k, n))
				}
			}
		},
	}
}

func buildVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " (" + strings.TrimPrefix(bi.GoVersion, "go") + ")"
	}
	return v
}
