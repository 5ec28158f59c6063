package pipeline

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is one pipeline file.
type Config struct {
	Name       string          `yaml:"name" required:"true"`
	Source     SourceSpec      `yaml:"source" required:"true"`
	Transforms []TransformSpec `yaml:"transforms"`
	Sinks      []SinkSpec      `yaml:"sinks" required:"true"`
	// DeadLetter receives events that failed permanently, with the reason.
	// Without one, a permanent failure stops the pipeline unacked.
	DeadLetter *SinkSpec      `yaml:"dead_letter"`
	Batch      BatchConfig    `yaml:"batch"`
	Retry      RetryConfig    `yaml:"retry"`
	Metrics    MetricsConfig  `yaml:"metrics"`
	Delivery   DeliveryConfig `yaml:"delivery"`

	// File is the path the config was read from, for messages.
	File string `yaml:"-"`
	// Warnings are settings that are valid but weaken a guarantee (see
	// Warner), with file:line, in line order.
	Warnings ConfigErrors `yaml:"-"`
}

// BatchConfig bounds a batch: it is flushed at whichever limit comes first.
type BatchConfig struct {
	MaxEvents int      `yaml:"max_events"`
	MaxBytes  ByteSize `yaml:"max_bytes"`
	MaxWait   Duration `yaml:"max_wait"`
}

// RetryConfig shapes the exponential backoff of retryable failures.
type RetryConfig struct {
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	// MaxAttempts bounds the tries of one event in one component; 0 retries
	// until shutdown, which is what an outage wants. When the attempts run
	// out the event is failed permanently (dead-lettered).
	MaxAttempts int `yaml:"max_attempts"`
}

// MetricsConfig is where /metrics, /healthz and /readyz are served.
type MetricsConfig struct {
	// Listen is host:port; empty serves nothing.
	Listen string `yaml:"listen"`
}

// DeliveryConfig tunes concurrency and shutdown.
type DeliveryConfig struct {
	// Lanes is how many batches are processed at once. Events are assigned
	// to lanes by partition key, so a key's events stay in order.
	Lanes int `yaml:"lanes"`
	// MaxInFlight bounds the batches queued or processing across all
	// lanes: a slow sink fills them and then stops the source.
	MaxInFlight int `yaml:"max_in_flight"`
	// ShutdownTimeout is how long in-flight batches may take to finish on
	// SIGTERM before they are abandoned unacked.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// SetDefaults fills what a pipeline file may leave out.
func (c *Config) SetDefaults() {
	c.Batch = BatchConfig{MaxEvents: 500, MaxBytes: 4 << 20, MaxWait: Duration(100 * time.Millisecond)}
	c.Retry = RetryConfig{InitialInterval: Duration(100 * time.Millisecond), MaxInterval: Duration(30 * time.Second)}
	lanes := max(4, 2*runtime.GOMAXPROCS(0))
	c.Delivery = DeliveryConfig{Lanes: lanes, MaxInFlight: 2 * lanes, ShutdownTimeout: Duration(30 * time.Second)}
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	if c.Batch.MaxEvents <= 0 {
		errs = append(errs, FieldErrorf("batch.max_events", "must be at least 1"))
	}
	if c.Batch.MaxBytes <= 0 {
		errs = append(errs, FieldErrorf("batch.max_bytes", "must be more than 0"))
	}
	if c.Batch.MaxWait <= 0 {
		errs = append(errs, FieldErrorf("batch.max_wait", "must be more than 0 (it bounds how long an event waits for its batch)"))
	}
	if c.Delivery.Lanes <= 0 {
		errs = append(errs, FieldErrorf("delivery.lanes", "must be at least 1"))
	}
	if c.Delivery.MaxInFlight < c.Delivery.Lanes {
		errs = append(errs, FieldErrorf("delivery.max_in_flight", "must be at least delivery.lanes (%d)", c.Delivery.Lanes))
	}
	if c.Retry.InitialInterval <= 0 {
		errs = append(errs, FieldErrorf("retry.initial_interval", "must be more than 0"))
	}
	if c.Retry.MaxInterval < c.Retry.InitialInterval {
		errs = append(errs, FieldErrorf("retry.max_interval", "must be at least retry.initial_interval"))
	}
	if c.Retry.MaxAttempts < 0 {
		errs = append(errs, FieldErrorf("retry.max_attempts", "must be 0 (retry until shutdown) or more"))
	}
	if len(c.Sinks) == 0 {
		errs = append(errs, FieldErrorf("sinks", "needs at least one sink"))
	}
	return errors.Join(errs...)
}

// LoadFile reads, interpolates and strictly decodes a pipeline file. The
// error, if any, is ConfigErrors listing every mistake with file:line.
func LoadFile(path string, reg *Registry, getenv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline config: %w", err)
	}
	return Load(path, data, reg, getenv)
}

// Load decodes a pipeline config from data; file names it in errors.
// getenv resolves ${VAR} references (os.LookupEnv in production).
func Load(file string, data []byte, reg *Registry, getenv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, ConfigErrors{yamlSyntaxError(file, err)}
	}
	if len(root.Content) == 0 {
		return nil, ConfigErrors{{File: file, Line: 1, Msg: "the file is empty"}}
	}
	d := &decoder{file: file, registry: reg, lines: map[string]int{}}
	interpolate(root.Content[0], "", getenv, d)
	cfg := &Config{File: file}
	cfg.SetDefaults()
	d.decode(root.Content[0], reflect.ValueOf(cfg).Elem(), "")
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		return nil, d.errs
	}
	sort.SliceStable(d.warns, func(i, j int) bool { return d.warns[i].Line < d.warns[j].Line })
	cfg.Warnings = d.warns
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntaxError(file string, err error) *ConfigError {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &ConfigError{File: file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &ConfigError{File: file, Msg: "YAML syntax: " + err.Error()}
}

var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// interpolate replaces ${VAR} and ${VAR:-default} in every scalar value; $$
// is a literal $. A variable that is unset and has no default is an error:
// an empty broker list or password fails later and less clearly.
func interpolate(n *yaml.Node, path string, getenv func(string) (string, bool), d *decoder) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		orig := n.Value
		n.Value = envRef.ReplaceAllStringFunc(orig, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			m := envRef.FindStringSubmatch(ref)
			if v, ok := getenv(m[1]); ok && (v != "" || m[2] == "") {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			d.fail(n, path, "environment variable %s is not set (write ${%s:-default} to give a default)", m[1], m[1])
			return ""
		})
		if n.Value != orig && n.Style == 0 {
			// Let the substituted text be typed as YAML would type it
			// (a port becomes an int), as if written in place.
			n.Tag = ""
			var typed yaml.Node
			if err := yaml.Unmarshal([]byte(n.Value), &typed); err == nil && len(typed.Content) == 1 && typed.Content[0].Kind == yaml.ScalarNode {
				n.Tag = typed.Content[0].Tag
			} else {
				n.Tag = "!!str"
			}
		}
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			interpolate(n.Content[i+1], joinPath(path, n.Content[i].Value), getenv, d)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			interpolate(c, fmt.Sprintf("%s[%d]", path, i), getenv, d)
		}
	}
}

func reflectValueOf(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
