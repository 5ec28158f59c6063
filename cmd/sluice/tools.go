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
	for _, warn := range pipeline.Lint(cfg) {
		fmt.Fprintln(w, warn)
	}
}
