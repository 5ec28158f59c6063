package pipeline_test

import (
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

type warnSinkConfig struct {
	Insecure bool `yaml:"insecure"`
	Nested   struct {
		Open bool `yaml:"open"`
	} `yaml:"nested"`
}

func (c *warnSinkConfig) Warnings() []error {
	var w []error
	if c.Insecure {
		w = append(w, pipeline.FieldErrorf("insecure", "turns the check off"))
	}
	if c.Nested.Open {
		w = append(w, pipeline.FieldErrorf("nested.open", "accepts anyone"))
	}
	return w
}

// A Warner's warnings do not fail the load; they come back in
// Config.Warnings with file:line and the key's full path, in line order.
func TestLoadReportsWarningsWithLineAndPath(t *testing.T) {
	r := pipeline.NewRegistry()
	pipelinetest.Register(r, pipelinetest.NewSource())
	pipeline.RegisterSink(r, "warny", "test", func(pipeline.BuildContext, *warnSinkConfig) (pipeline.Sink, error) {
		return &pipelinetest.Sink{}, nil
	})
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"none", "name: x\nsource: {mem: {}}\nsinks:\n  - warny: {}\n", nil},
		{"two", "name: x\nsource: {mem: {}}\nsinks:\n  - warny:\n      nested:\n        open: true\n      insecure: true\n", []string{
			"w.yaml:6: sinks[0].warny.nested.open: accepts anyone",
			"w.yaml:7: sinks[0].warny.insecure: turns the check off",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pipeline.Load("w.yaml", []byte(tc.yaml), r, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) != len(tc.want) {
				t.Fatalf("warnings %v, want %q", cfg.Warnings, tc.want)
			}
			for i, w := range cfg.Warnings {
				if w.Error() != tc.want[i] {
					t.Errorf("warning %d: %q, want %q", i, w.Error(), tc.want[i])
				}
			}
		})
	}
}
