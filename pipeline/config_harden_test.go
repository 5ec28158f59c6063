package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

type secretSinkConfig struct {
	URL     string            `yaml:"url"`
	Port    int               `yaml:"port"`
	Enabled bool              `yaml:"enabled"`
	Note    string            `yaml:"note"`
	Extra   map[string]any    `yaml:"extra"`
	Timeout pipeline.Duration `yaml:"timeout"`
}

func (c *secretSinkConfig) Validate() error {
	if c.URL != "" && !strings.HasPrefix(c.URL, "https://") {
		return pipeline.FieldErrorf("url", "%q is not an https:// URL", c.URL)
	}
	return nil
}

func secretRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	pipelinetest.Register(r, pipelinetest.NewSource())
	pipeline.RegisterSink(r, "s", "test", func(pipeline.BuildContext, *secretSinkConfig) (pipeline.Sink, error) {
		return &pipelinetest.Sink{}, nil
	})
	return r
}

// Item 2: a value that came from ${VAR} is never echoed in a config error.
func TestConfigErrorsNeverEchoSubstitutedValues(t *testing.T) {
	const secret = "hunter2-Sup3r\"S3cret"
	vars := env(map[string]string{"SECRET": secret})
	for _, tc := range []struct{ name, sink, want string }{
		{"bad scheme in a URL", `{url: "ftp://elastic:${SECRET}@host"}`, `sinks[0].s.url: "ftp://elastic:the value of ${SECRET}@host" is not an https:// URL`},
		{"mistyped field", `{port: "${SECRET}"}`, `sinks[0].s.port: expected a whole number, got the value of "${SECRET}"`},
		{"unquoted mistyped field", "\n      port: ${SECRET}", `sinks[0].s.port: expected a whole number, got the value of "${SECRET}"`},
		{"list where a string goes", `{note: [a]}`, `expected a string`},
		{"duration", `{timeout: "${SECRET}"}`, `the value of ${SECRET}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Load("s.yaml", []byte("name: x\nsource: {mem: {}}\nsinks:\n  - s: "+tc.sink+"\n"), secretRegistry(), vars)
			if err == nil {
				t.Fatal("no error")
			}
			for _, form := range []string{secret, fmt.Sprintf("%q", secret)[1:20], "hunter2"} {
				if strings.Contains(err.Error(), form) {
					t.Fatalf("error echoes the secret (%q):\n%v", form, err)
				}
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n%v\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
	cfg, err := pipeline.Load("s.yaml", []byte("name: x\nsource: {mem: {}}\nsinks:\n  - s: {url: \"https://u:${SECRET}@h\"}\n"), secretRegistry(), vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Secrets) != 1 || cfg.Secrets[0] != (pipeline.Secret{Name: "SECRET", Value: secret}) {
		t.Fatalf("Secrets = %+v", cfg.Secrets)
	}
}

// Item 10: an unquoted ${VAR} is a string scalar; only the field's type
// may read it as a number or boolean, and null-looking text never vanishes.
func TestSubstitutedValuesKeepTheirType(t *testing.T) {
	// Block style: an unquoted ${V} is no valid plain scalar in a flow mapping.
	load := func(keys string, vars map[string]string) (*secretSinkConfig, error) {
		cfg, err := pipeline.Load("s.yaml", []byte("name: x\nsource: {mem: {}}\nsinks:\n  - s:\n      "+strings.ReplaceAll(keys, "\n", "\n      ")+"\n"), secretRegistry(), env(vars))
		if err != nil {
			return nil, err
		}
		return cfg.Sinks[0].Config.(*secretSinkConfig), nil
	}
	for _, v := range []string{"null", "~", "!!binary aGVsbG8=", "true", "0x1F", "1e3", "[a, b]", "{a: 1}", "&anchor x", "*alias", "# comment", ""} {
		t.Run("string "+v, func(t *testing.T) {
			c, err := load("note: ${V}", map[string]string{"V": v})
			if err != nil {
				t.Fatal(err)
			}
			if c.Note != v {
				t.Fatalf("note = %q, want %q as written in the variable", c.Note, v)
			}
			c, err = load("extra:\n  k: ${V}", map[string]string{"V": v})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := c.Extra["k"].(string); !ok || got != v {
				t.Fatalf("extra.k = %#v, want the string %q", c.Extra["k"], v)
			}
		})
	}
	c, err := load("port: ${P}\nenabled: ${E}\ntimeout: ${T}", map[string]string{"P": "9092", "E": "true", "T": "5s"})
	if err != nil || c.Port != 9092 || !c.Enabled || c.Timeout.D().String() != "5s" {
		t.Fatalf("typed fields: %+v, %v", c, err)
	}
	for _, v := range []string{"null", "~", ""} {
		if _, err := load("port: ${P}", map[string]string{"P": v}); err == nil || !strings.Contains(err.Error(), "s.yaml:5: sinks[0].s.port: expected a whole number") {
			t.Errorf("port from %q: %v, want a type error (not a silent zero)", v, err)
		}
	}
}

// Item 9: nested aliases cannot blow up: expansion is bounded in count and
// size, and the error names the file and line.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: x\nsource: {mem: {}}\nsinks:\n  - s:\n      extra:\n")
	b.WriteString(`        a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 1; i < 6; i++ {
		fmt.Fprintf(&b, "        a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	// Each value is decoded on its own, under yaml.v3's per-decode alias
	// ratio; together they are 59 million nodes.
	for i := range 1000 {
		fmt.Fprintf(&b, "        k%d: *a5\n", i)
	}
	_, err := pipeline.Load("bomb.yaml", []byte(b.String()), secretRegistry(), env(nil))
	if err == nil || !strings.Contains(err.Error(), "bomb.yaml:") || !strings.Contains(err.Error(), "aliases expand to more than") {
		t.Fatalf("Load = %v, want an alias-expansion error at file:line", err)
	}
	// Aliases used as meant still work.
	ok := "name: x\nsource: {mem: {}}\nbase: &b {url: \"https://h\", port: 1}\nsinks:\n  - s: *b\n  - s: *b\n"
	if _, err := pipeline.Load("ok.yaml", []byte(ok), secretRegistry(), env(nil)); err != nil && !strings.Contains(err.Error(), "base: unknown field") {
		t.Fatalf("plain aliases: %v", err)
	}
}
