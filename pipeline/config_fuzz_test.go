package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

// The components below exist only so the fuzzer reaches the per-component
// decoding paths (defaults, required fields, Validate, every field kind the
// decoder handles) without importing real component packages.

type fuzzSourceConfig struct {
	Path     string              `yaml:"path" required:"true"`
	Rate     *pipeline.Rate      `yaml:"rate"`
	Every    pipeline.Duration   `yaml:"every"`
	Limit    pipeline.ByteSize   `yaml:"limit"`
	Count    int64               `yaml:"count"`
	Ratio    float64             `yaml:"ratio"`
	Small    uint8               `yaml:"small"`
	On       bool                `yaml:"on"`
	Tags     []string            `yaml:"tags"`
	Labels   map[string]string   `yaml:"labels"`
	Extra    map[string]any      `yaml:"extra"`
	Anything any                 `yaml:"anything"`
	Nested   *fuzzNested         `yaml:"nested"`
	List     []fuzzNested        `yaml:"list"`
	Inline   fuzzInline          `yaml:",inline"`
	Sizes    []pipeline.ByteSize `yaml:"sizes"`
}

type fuzzNested struct {
	Name  string            `yaml:"name" required:"true"`
	Wait  pipeline.Duration `yaml:"wait"`
	Depth int               `yaml:"depth"`
}

type fuzzInline struct {
	Mode string `yaml:"mode"`
}

func (c *fuzzSourceConfig) SetDefaults() { c.Count = 10; c.Ratio = 0.5 }

func (c *fuzzSourceConfig) Validate() error {
	var errs []error
	if c.Count < 0 {
		errs = append(errs, pipeline.FieldErrorf("count", "must not be negative"))
	}
	if c.Ratio < 0 || c.Ratio > 1 {
		errs = append(errs, pipeline.FieldErrorf("ratio", "must be within 0..1"))
	}
	if c.Nested != nil && c.Nested.Depth < 0 {
		errs = append(errs, pipeline.FieldErrorf("nested.depth", "must not be negative"))
	}
	if c.Inline.Mode == "bad" {
		errs = append(errs, errors.New("a plain, non-field error"))
	}
	return errors.Join(errs...)
}

type fuzzSinkConfig struct {
	Target string `yaml:"target"`
	Format string `yaml:"format"`
}

func (c *fuzzSinkConfig) SetDefaults() { c.Format = "body" }

func (c *fuzzSinkConfig) Validate() error {
	if c.Format != "body" && c.Format != "payload" {
		return pipeline.FieldErrorf("format", "must be body or payload")
	}
	return nil
}

type fuzzTransformConfig struct {
	Field string `yaml:"field" required:"true"`
}

type fuzzComponent struct{}

func (fuzzComponent) Read(context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	return nil, nil, nil
}
func (fuzzComponent) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	return in, nil
}
func (fuzzComponent) Write(context.Context, []*pipeline.Event) error { return nil }
func (fuzzComponent) Close(context.Context) error                    { return nil }

func fuzzRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	pipeline.RegisterSource(r, "thing", "test source", func(pipeline.BuildContext, *fuzzSourceConfig) (pipeline.Source, error) {
		return fuzzComponent{}, nil
	})
	pipeline.RegisterTransform(r, "touch", "test transform", func(pipeline.BuildContext, *fuzzTransformConfig) (pipeline.Transform, error) {
		return fuzzComponent{}, nil
	})
	pipeline.RegisterSink(r, "bucket", "test sink", func(pipeline.BuildContext, *fuzzSinkConfig) (pipeline.Sink, error) {
		return fuzzComponent{}, nil
	})
	pipeline.RegisterSink(r, "discard", "test sink without config", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) {
		return fuzzComponent{}, nil
	})
	return r
}

func fuzzGetenv(name string) (string, bool) {
	switch name {
	case "SET":
		return "value", true
	case "NUM":
		return "42", true
	case "EMPTY":
		return "", true
	case "MAP":
		return "{a: 1}", true
	case "LIST":
		return "[1, 2]", true
	}
	return "", false
}

const fuzzFile = "fuzz.yaml"

func FuzzLoad(f *testing.F) {
	seeds := []string{
		"",
		"name: x\n",
		"name: p\nsource:\n  thing: {path: /tmp/in}\nsinks:\n  - bucket: {target: out}\n",
		`name: full
source:
  thing:
    path: ${SET}
    rate: 3333/s
    every: 100ms
    limit: 4MiB
    count: ${NUM}
    ratio: 0.25
    small: 7
    on: true
    tags: [a, b]
    labels: {k: v}
    extra: {x: [1, {y: z}]}
    anything: [1, 2]
    nested: {name: n, wait: 1s, depth: 3}
    list: [{name: a}, {name: b, depth: -1}]
    mode: fast
    sizes: [1KB, 2MiB]
transforms:
  - touch: {field: data.email}
  - touch:
sinks:
  - bucket: {target: "${MISSING:-def}", format: payload}
  - discard:
dead_letter:
  bucket: {target: dl}
batch: {max_events: 500, max_bytes: 4MiB, max_wait: 100ms}
retry: {initial_interval: 100ms, max_interval: 30s, max_attempts: 3}
metrics: {listen: "127.0.0.1:9102"}
delivery: {lanes: 4, max_in_flight: 8, shutdown_timeout: 30s}
`,
		"name: a\nsource: &s\n  thing: {path: p}\nsinks:\n  - bucket: *s\n",
		"base: &b {path: p, count: 3}\nname: a\nsource:\n  thing: *b\nsinks: [{bucket: }]\n",
		"name: a\nsource: {thing: {path: p}, other: {}}\nsinks: {bucket: {}}\n",
		"name: a\nsource:\n  thing: {path: p, nested: {depth: -1}, mode: bad, ratio: 2}\nsinks: [{discard: }]\nbatch: {max_events: 0}\n",
		"name: ${MISSING}\nsource: ${MAP}\nsinks: ${LIST}\n",
		"name: $$x\nsource:\n  thing:\n    path: p\n    path: q\nsinks: [{buket: {}}]\n",
		"- a\n- b\n",
		"name: [a\n",
		"name: a\n\tsource: x\n",
		"name: !!binary aGVsbG8=\nsource: !!map {thing: {path: p}}\nsinks: []\n",
		"{? [a]: b}\n",
		"name: a\nsource:\n  thing:\n    path: p\n    rate: 0/s\n    every: -1s\n    limit: lots\n    small: 300\n",
		"a: &a [*a]\n",
		"---\nname: a\n---\nname: b\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	reg := fuzzRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := pipeline.Load(fuzzFile, data, reg, fuzzGetenv)
		if err == nil {
			if cfg == nil {
				t.Fatal("Load returned neither a config nor an error")
			}
			if cfg.File != fuzzFile {
				t.Fatalf("cfg.File = %q, want %q", cfg.File, fuzzFile)
			}
			if cfg.Name == "" || cfg.Source.Name == "" || len(cfg.Sinks) == 0 {
				t.Fatalf("Load accepted a config missing a required part: name=%q source=%q sinks=%d", cfg.Name, cfg.Source.Name, len(cfg.Sinks))
			}
			return
		}
		if cfg != nil {
			t.Fatalf("Load returned a config together with error %v", err)
		}
		var ces pipeline.ConfigErrors
		if !errors.As(err, &ces) {
			t.Fatalf("error is %T, not pipeline.ConfigErrors: %v", err, err)
		}
		if len(ces) == 0 {
			t.Fatal("empty ConfigErrors returned as an error")
		}
		for i, ce := range ces {
			if ce == nil {
				t.Fatalf("ConfigErrors[%d] is nil", i)
			}
			if ce.File != fuzzFile {
				t.Fatalf("ConfigErrors[%d].File = %q, want %q (%v)", i, ce.File, fuzzFile, ce)
			}
			if ce.Msg == "" {
				t.Fatalf("ConfigErrors[%d] has no message: %v", i, ce)
			}
		}
	})
}
