package main

import (
	"io"

	"github.com/spf13/cobra"
)

// toolCmds are the operator tools: schema, test, tap, top. They live in
// their own files so the core commands in main.go stay small.
func toolCmds(g *globalFlags, stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{schemaCmd(stdout), testCmd(stdout)}
}
