package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/testrun"
)

func testCmd(stdout io.Writer) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run pipeline unit tests: input events in, expected outputs, drops and dead letters out",
		Long: `Run pipeline unit tests. A test file names a pipeline file; each test replaces
the pipeline's source with its input events and its sinks (and dead letter) with
captures, runs the transforms, and checks what came out: fields equal to values,
expression conditions (the filter transform's language), how many events were
dropped, and which were dead-lettered with what reason. Exits 1 with a diff when
a test fails. See docs/tooling.md.`,
		Example: "  sluice test examples/tests/*.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var files []string
			for _, a := range args {
				m, err := filepath.Glob(a) // quoted globs work too
				if err != nil || len(m) == 0 {
					m = []string{a}
				}
				files = append(files, m...)
			}
			passed, failed, broken := 0, 0, 0
			for _, path := range files {
				f, err := testrun.Load(path)
				if err == nil {
					var results []*testrun.Result
					results, err = testrun.Run(cmd.Context(), f, registry(), os.LookupEnv)
					for _, r := range results {
						if r.Passed() {
							passed++
							if verbose {
								fmt.Fprintf(stdout, "ok   %s:%d: %s\n", r.File, r.Line, r.Name)
							}
							continue
						}
						failed++
						fmt.Fprintf(stdout, "FAIL %s:%d: %s\n    %s\n", r.File, r.Line, r.Name, strings.Join(r.Failures, "\n    "))
					}
				}
				if err != nil {
					broken++
					fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
				}
			}
			fmt.Fprintf(stdout, "%d passed, %d failed, %d files with errors\n", passed, failed, broken)
			if failed > 0 || broken > 0 {
				return errors.New("tests failed")
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")
	return cmd
}
