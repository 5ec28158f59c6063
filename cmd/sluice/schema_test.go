package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/schemadoc"
)

// compileSchema compiles `sluice schema`'s output with a JSON Schema
// library, which also checks it is a valid draft 2020-12 schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := execute([]string{"schema"}, &out, &errOut); code != 0 {
		t.Fatalf("schema exit %d: %s", code, errOut.String())
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("sluice.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("sluice.schema.json")
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return s
}

// yamlToJSONValue decodes a YAML pipeline file into what the validator
// takes (through JSON, so numbers are json.Number as the library expects).
func yamlToJSONValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestSchemaAcceptsEveryExample(t *testing.T) {
	s := compileSchema(t)
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(yamlToJSONValue(t, data)); err != nil {
				t.Fatalf("%s does not match the schema:\n%v", f, err)
			}
		})
	}
}

func TestSchemaRejectsBrokenConfigs(t *testing.T) {
	s := compileSchema(t)
	ok := "name: x\nsource: {generate: {count: 10}}\nsinks: [{stdout: {}}]\n"
	if err := s.Validate(yamlToJSONValue(t, []byte(ok))); err != nil {
		t.Fatalf("a minimal valid file is rejected: %v", err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top-level key", ok + "sinkz: []\n", "sinkz"},
		{"unknown component key", "name: x\nsource: {generate: {}}\nsinks:\n  - file: {path: a, fsinc: true}\n", "fsinc"},
		{"unknown component", "name: x\nsource: {generate: {}}\ntransforms: [{decodee: {format: json}}]\nsinks: [{stdout: {}}]\n", "decodee"},
		{"two sources", "name: x\nsource: {generate: {}, file: {path: a}}\nsinks: [{stdout: {}}]\n", "maxProperties"},
		{"missing name", "source: {generate: {}}\nsinks: [{stdout: {}}]\n", "name"},
		{"missing required component key", "name: x\nsource: {file: {id_field: id}}\nsinks: [{stdout: {}}]\n", "path"},
		{"value outside the enum", "name: x\nsource: {generate: {}}\ntransforms: [{decode: {format: xml}}]\nsinks: [{stdout: {}}]\n", "format"},
		{"wrong type", "name: x\nsource: {generate: {count: lots}}\nsinks: [{stdout: {}}]\n", "count"},
		{"bad duration", ok + "batch: {max_wait: 100 ms}\n", "max_wait"},
		{"sinks not a list", "name: x\nsource: {generate: {}}\nsinks: {stdout: {}}\n", "sinks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate(yamlToJSONValue(t, []byte(tc.yaml)))
			if err == nil {
				t.Fatalf("the schema accepts:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestSchemaCarriesDocsDefaultsAndEnums(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := execute([]string{"schema"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var root map[string]any
	if err := json.Unmarshal(out.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) map[string]any {
		t.Helper()
		cur := root
		for _, p := range path {
			next, ok := cur[p].(map[string]any)
			if !ok {
				t.Fatalf("no %v in the schema (at %q)", path, p)
			}
			cur = next
		}
		return cur
	}
	kafkaSrc := get("properties", "source", "properties", "kafka")["anyOf"].([]any)[0].(map[string]any)
	start := kafkaSrc["properties"].(map[string]any)["start"].(map[string]any)
	if d, _ := start["description"].(string); !strings.Contains(d, "committed offset") {
		t.Errorf("kafka start description %q: want the field's doc comment", d)
	}
	if start["default"] != "earliest" {
		t.Errorf("kafka start default %v, want earliest", start["default"])
	}
	if enum, _ := json.Marshal(start["anyOf"]); !strings.Contains(string(enum), `"enum":["earliest","latest"]`) {
		t.Errorf("kafka start allows %s", enum)
	}
	if req, _ := json.Marshal(kafkaSrc["required"]); !strings.Contains(string(req), `"group"`) {
		t.Errorf("kafka source required %s, want group", req)
	}
	if d := get("properties", "batch", "properties", "max_wait")["default"]; d != "100ms" {
		t.Errorf("batch.max_wait default %v, want 100ms", d)
	}
	if _, ok := get("properties", "delivery", "properties", "lanes")["default"]; ok {
		t.Error("delivery.lanes has a machine-dependent default in the schema")
	}
}

// TestSchemaDocsUpToDate fails when a config struct's doc comment changed
// and `go generate ./cmd/sluice` was not run.
func TestSchemaDocsUpToDate(t *testing.T) {
	docs, err := schemadoc.Collect("../..", "github.com/sluicehq/sluice", schemadoc.Dirs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := schemadoc.Render("main", "schemaDocs", docs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("schemadoc_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("schemadoc_gen.go is stale: run `go generate ./cmd/sluice`")
	}
}
