package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/pipeline"
)

// toolCmds are the operator tools: schema, test, tap, top. They live in
// their own files so the core commands in main.go stay small.
func toolCmds(g *globalFlags, stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{schemaCmd(stdout), testCmd(stdout), tapCmd(stdout), topCmd(stdout)}
}

// printWarnings prints what `validate` finds valid but probably wrong.
func printWarnings(w io.Writer, cfg *pipeline.Config) {
	for _, warn := range cfg.Warnings {
		fmt.Fprintln(w, warningText(warn))
	}
	for _, warn := range pipeline.Lint(cfg) {
		fmt.Fprintln(w, warn)
	}
}

// printWatchHint tells the demo's reader how to watch the running consumer
// with top and tap (the demo pipelines set metrics.tap).
func printWatchHint(w io.Writer, cfg *pipeline.Config) {
	addr := "http://" + cfg.Metrics.Listen
	fmt.Fprintf(w, "watch it from another terminal: sluice top %s\n", addr)
	if cfg.Metrics.Tap && len(cfg.Transforms) > 0 {
		last := cfg.Transforms[len(cfg.Transforms)-1].Label()
		fmt.Fprintf(w, "                                sluice tap %s --component %s --limit 3 --format table\n", addr, last)
	}
}
