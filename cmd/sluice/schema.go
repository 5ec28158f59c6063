package main

import (
	"fmt"
	"io"
	"reflect"

	"github.com/spf13/cobra"
)

//go:generate go run ../../internal/schemadoc/gen -root ../.. -o schemadoc_gen.go

func schemaCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (draft 2020-12) of a pipeline file, for editors",
		Long: `Print a JSON Schema (draft 2020-12) of the pipeline file, generated from the
config structs of every component this binary has: keys, required keys,
allowed values, defaults and descriptions. Save it and point your editor at it:

  sluice schema > sluice.schema.json
  # first line of a pipeline file, for VS Code's YAML extension (redhat.vscode-yaml):
  # yaml-language-server: $schema=./sluice.schema.json

The schema helps while typing; ` + "`sluice validate`" + ` stays the full check.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := pipelineSchema()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		},
	}
}

// pipelineSchema is the JSON Schema of the CLI's registry, described from
// the doc comments collected in schemadoc_gen.go.
func pipelineSchema() ([]byte, error) {
	return registry().JSONSchema(func(t reflect.Type, field string) string {
		key := t.PkgPath() + "." + t.Name()
		if field != "" {
			key += "." + field
		}
		return schemaDocs[key]
	})
}
