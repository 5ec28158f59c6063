// Package examples holds example pipelines; the test checks they load.
package examples

import (
	"bytes"
	"context"
	"github.com/tidwall/gjson"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/generate"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	"github.com/sluicehq/sluice/transforms/decode"
	"github.com/sluicehq/sluice/transforms/dedupe"
	"github.com/sluicehq/sluice/transforms/encode"
	"github.com/sluicehq/sluice/transforms/enrich"
	"github.com/sluicehq/sluice/transforms/filter"
	"github.com/sluicehq/sluice/transforms/mapping"
)

func TestTransformExamplesLoad(t *testing.T) {
	if err := os.Chdir(".."); err != nil { // accounts paths are relative to the repo root
		t.Fatal(err)
	}
	defer os.Chdir("examples")
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	filesinks.Register(reg)
	decode.Register(reg)
	enrich.Register(reg)
	dedupe.Register(reg)
	filter.Register(reg)
	mapping.Register(reg)
	encode.Register(reg)
	kafkasource.Register(reg)
	kafkasink.Register(reg)
	for _, f := range []string{"transforms-to-files.yaml", "dedupe-redis.yaml", "avro-kafka.yaml"} {
		t.Run(f, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("examples", f))
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			env := func(k string) (string, bool) {
				switch k {
				case "SLUICE_OUT_DIR":
					return out, true
				case "SLUICE_DEMO_COUNT":
					return "3000", true
				}
				return "", false
			}
			cfg, err := pipeline.Load(f, doc, reg, env)
			if err != nil {
				t.Fatal(err)
			}
			if f != "transforms-to-files.yaml" {
				return // needs redis or kafka; loading is what is checked here
			}
			p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(out, "canonical.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
			if len(lines) < 1000 {
				t.Fatalf("only %d events written", len(lines))
			}
			for _, l := range lines {
				c := gjson.ParseBytes(l)
				if !c.Get("entity.kind").Exists() || !c.Get("attributes.display_email").Exists() || !c.Get("meta.pipeline").Exists() || c.Get("attributes.phone").Exists() {
					t.Fatalf("not mapped: %s", l)
				}
			}
			dead, _ := os.ReadFile(filepath.Join(out, "dead.jsonl"))
			t.Logf("%d written, %d dead-lettered", len(lines), bytes.Count(dead, []byte("\n")))
		})
	}
}
