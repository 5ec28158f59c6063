package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/testwait"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/file"
	"github.com/sluicehq/sluice/transforms/decode"
)

// TestEngineDeepNestingDeadLettered is issue #15 item 1: a line nested
// deeper than decode's max_depth (a 10 MB line of `[`, which crashed the
// process with "fatal error: stack overflow" in gjson's recursive
// validation) is dead-lettered with the reason, and the lines around it
// go on to the sink.
func TestEngineDeepNestingDeadLettered(t *testing.T) {
	cases := []struct {
		name string
		line string
	}{
		{"10MB of [", strings.Repeat("[", 10<<20)},
		{"10MB of {\"a\":", strings.Repeat(`{"a":`, 2<<20)},
		{"513 levels in an object", `{"id":"deep","x":` + strings.Repeat("[", 513) + strings.Repeat("]", 513) + `}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.jsonl")
			in := fmt.Sprintf("{\"id\":\"a\"}\n%s\n{\"id\":\"b\"}\n", tc.line)
			if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
				t.Fatal(err)
			}
			out, dead := &pipelinetest.Sink{}, &pipelinetest.Sink{}
			reg := pipeline.NewRegistry()
			file.Register(reg)
			decode.Register(reg)
			pipelinetest.Register(reg, nil, out, dead)
			doc := fmt.Sprintf(`name: deep
source: {file: {path: %q, max_line_bytes: 32MiB}}
transforms: [{decode: {format: json, id: id}}]
sinks: [{mem: {index: 0}}]
dead_letter: {mem: {index: 1}}
`, path)
			cfg, err := pipeline.Load("deep.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound()) // only catches a hang
			defer cancel()
			if err := p.Run(ctx); err != nil {
				t.Fatalf("run: %v", err)
			}
			if ids := out.IDs(); len(ids) != 2 || !ids["a"] || !ids["b"] {
				t.Errorf("sink got ids %v, want a and b", ids)
			}
			dls := dead.Writes()
			if len(dls) != 1 {
				t.Fatalf("dead letter got %d events, want 1", len(dls))
			}
			var dl pipeline.DeadLetter
			if err := json.Unmarshal([]byte(dls[0].Body), &dl); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dl.Reason, "max_depth") {
				t.Errorf("reason %q does not name max_depth", dl.Reason)
			}
			if orig, err := dl.Original(); err != nil || !bytes.Equal(orig, []byte(tc.line)) {
				t.Errorf("dead letter does not hold the original line (%d bytes, err %v)", len(orig), err)
			}
		})
	}
}
