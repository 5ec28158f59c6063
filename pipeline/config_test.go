package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

type testSinkConfig struct {
	Collection string            `yaml:"collection" required:"true"`
	Timeout    pipeline.Duration `yaml:"timeout"`
	Port       int               `yaml:"port"`
	Tags       []string          `yaml:"tags"`
}

func (c *testSinkConfig) SetDefaults() { c.Timeout = pipeline.Duration(time.Second) }

func (c *testSinkConfig) Validate() error {
	if c.Port < 0 {
		return pipeline.FieldErrorf("port", "must not be negative")
	}
	return nil
}

func testRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	pipelinetest.Register(r, pipelinetest.NewSource())
	pipeline.RegisterSink(r, "mongodb", "test", func(pipeline.BuildContext, *testSinkConfig) (pipeline.Sink, error) {
		return &pipelinetest.Sink{}, nil
	})
	return r
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestLoadReportsEveryMistakeWithLineAndPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each must appear, in this order
	}{
		{
			name: "unknown field with suggestion",
			yaml: "name: x\nsource: {mem: {}}\nsinks:\n  - mongodb:\n      colection: c\n",
			want: []string{
				"crm.yaml:5: sinks[0].mongodb.colection: unknown field (did you mean collection?)",
				"crm.yaml:5: sinks[0].mongodb.collection: required field is missing",
			},
		},
		{
			name: "wrong types",
			yaml: "name: x\nsource: {mem: {}}\nsinks:\n  - mongodb: {collection: c, port: eighty, tags: a}\nbatch:\n  max_events: [1]\n",
			want: []string{
				`crm.yaml:4: sinks[0].mongodb.port: expected a whole number, got "eighty"`,
				`crm.yaml:4: sinks[0].mongodb.tags: expected a list, got "a"`,
				"crm.yaml:6: batch.max_events: expected a whole number, got a list",
			},
		},
		{
			name: "unknown component",
			yaml: "name: x\nsource: {kafak: {}}\nsinks:\n  - mongo: {collection: c}\n",
			want: []string{
				"crm.yaml:2: source.kafak: unknown source",
				"crm.yaml:4: sinks[0].mongo: unknown sink (did you mean mongodb?)",
			},
		},
		{
			name: "bad duration and size",
			yaml: "name: x\nsource: {mem: {}}\nsinks: [{mongodb: {collection: c, timeout: 5 minutes}}]\nbatch: {max_bytes: lots, max_wait: -1s}\n",
			want: []string{
				`crm.yaml:3: sinks[0].mongodb.timeout: "5 minutes" is not a duration`,
				`crm.yaml:4: batch.max_bytes: "lots" is not a size`,
				`crm.yaml:4: batch.max_wait: "-1s" is negative`,
			},
		},
		{
			name: "missing required top-level keys",
			yaml: "transforms: []\n",
			want: []string{"crm.yaml:1: name: required field is missing", "crm.yaml:1: source: required field is missing", "crm.yaml:1: sinks: required field is missing"},
		},
		{
			name: "two components in one spec",
			yaml: "name: x\nsource: {mem: {}, mongodb: {}}\nsinks: [{mongodb: {collection: c}}]\n",
			want: []string{"crm.yaml:2: source: expected exactly one source as `name: {config}`, got several: mem, mongodb"},
		},
		{
			name: "component Validate points at its key",
			yaml: "name: x\nsource: {mem: {}}\nsinks:\n  - mongodb:\n      collection: c\n      port: -5\n",
			want: []string{"crm.yaml:6: sinks[0].mongodb.port: must not be negative"},
		},
		{
			name: "pipeline Validate",
			yaml: "name: x\nsource: {mem: {}}\nsinks: [{mongodb: {collection: c}}]\ndelivery: {lanes: 8, max_in_flight: 2}\n",
			want: []string{"crm.yaml:4: delivery.max_in_flight: must be at least delivery.lanes (8)"},
		},
		{
			name: "unset variable",
			yaml: "name: x\nsource: {mem: {}}\nsinks: [{mongodb: {collection: \"${COLL}\"}}]\n",
			want: []string{"crm.yaml:3: sinks[0].mongodb.collection: environment variable COLL is not set"},
		},
		{
			name: "syntax error",
			yaml: "name: x\nsource: {mem: {}\n",
			want: []string{"crm.yaml:", "YAML syntax"},
		},
		{
			name: "duplicate key",
			yaml: "name: x\nname: y\nsource: {mem: {}}\nsinks: [{mongodb: {collection: c}}]\n",
			want: []string{"crm.yaml:2"},
		},
		{name: "empty file", yaml: "", want: []string{"crm.yaml:1: the file is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Load("crm.yaml", []byte(tc.yaml), testRegistry(), env(nil))
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			if _, ok := err.(pipeline.ConfigErrors); !ok {
				t.Fatalf("error is %T, want ConfigErrors", err)
			}
			msg := err.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("errors:\n%s\nwant (in order) %q", msg, w)
				}
				at += i + len(w)
			}
		})
	}
}

func TestLoadInterpolatesEnvironment(t *testing.T) {
	yaml := `name: "${NAME:-fallback}"
source: {mem: {}}
sinks:
  - mongodb:
      collection: "${COLL}"
      port: ${PORT}
      tags: ["$${literal}", "${EMPTY:-dflt}", "pre-${COLL}-post"]
`
	cfg, err := pipeline.Load("p.yaml", []byte(yaml), testRegistry(), env(map[string]string{"COLL": "contacts", "PORT": "27017", "EMPTY": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "fallback" {
		t.Errorf("name = %q", cfg.Name)
	}
	sc := cfg.Sinks[0].Config.(*testSinkConfig)
	if sc.Collection != "contacts" || sc.Port != 27017 || sc.Timeout.D() != time.Second {
		t.Errorf("sink config = %+v", sc)
	}
	if got := strings.Join(sc.Tags, ","); got != "${literal},dflt,pre-contacts-post" {
		t.Errorf("tags = %q", got)
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := pipeline.Load("p.yaml", []byte("name: x\nsource: {mem: {}}\nsinks: [{mongodb: {collection: c}}]\nbatch: {max_events: 7}\n"), testRegistry(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Batch.MaxEvents != 7 || cfg.Batch.MaxBytes != 4<<20 || cfg.Batch.MaxWait.D() != 100*time.Millisecond {
		t.Errorf("batch = %+v: a partial section must keep the other defaults", cfg.Batch)
	}
	if cfg.Delivery.Lanes < 1 || cfg.Delivery.MaxInFlight < cfg.Delivery.Lanes || cfg.Delivery.ShutdownTimeout.D() != 30*time.Second {
		t.Errorf("delivery = %+v", cfg.Delivery)
	}
	if cfg.Sinks[0].Label() != "sinks[0].mongodb" || cfg.Sinks[0].Line != 3 {
		t.Errorf("spec = %+v", cfg.Sinks[0].Spec)
	}
}
