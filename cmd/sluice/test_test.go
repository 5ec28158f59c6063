package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineTestsOfExamples runs the shipped tests of examples/ (what
// `make test` runs with the built binary).
func TestPipelineTestsOfExamples(t *testing.T) {
	setExampleSecrets(t)
	t.Chdir("../..")
	files, err := filepath.Glob("examples/tests/*.test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	var out, errOut bytes.Buffer
	code := execute(append([]string{"test", "-v"}, files...), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), " 0 failed, 0 files with errors") || strings.Contains(out.String(), "\n0 passed") {
		t.Fatalf("output:\n%s", out.String())
	}
}

const testPipeline = `name: t
source: {generate: {count: 1}}
transforms:
  - decode: {format: json, id: id}
  - filter: {keep: 'type != "heartbeat"'}
sinks:
  - file: {path: out.jsonl}
dead_letter:
  file: {path: dead.jsonl}
`

func TestSluiceTest(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(testPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	input := "    input:\n" +
		"      - json: {id: a, type: signup, data: {n: 1}}\n" +
		"      - json: {id: b, type: heartbeat}\n" +
		"      - payload: 'nope'\n"
	for _, tc := range []struct {
		name     string
		test     string
		wantCode int
		wantOut  []string // in stdout
		wantErr  []string // in stderr
	}{
		{"passing", "pipeline: p.yaml\ntests:\n  - name: all good\n" + input +
			"    outputs:\n      - {id: a, fields: {type: signup, data: {n: 1}}, condition: 'data.n == 1'}\n" +
			"    dropped: 1\n    dead_lettered:\n      - {id: input-2, component: \"transforms[0]\", reason: JSON}\n",
			0, []string{"1 passed, 0 failed"}, nil},
		{"field differs", "pipeline: p.yaml\ntests:\n  - name: wrong field\n" + input +
			"    outputs:\n      - fields: {type: signup, data.n: 2}\n",
			1, []string{"FAIL", "t.yaml:3: wrong field", "data.n: got 1, want 2", `event: {"data":{"n":1},"id":"a","type":"signup"}`, "0 passed, 1 failed"}, nil},
		{"condition false", "pipeline: p.yaml\ntests:\n  - name: cond\n" + input +
			"    outputs:\n      - condition: 'data.n > 5'\n",
			1, []string{`condition "data.n > 5": false`}, nil},
		{"wrong counts", "pipeline: p.yaml\ntests:\n  - name: counts\n" + input +
			"    outputs: []\n    dropped: 0\n    dead_lettered: []\n",
			1, []string{"outputs: got 1 events, want 0 (got a)", "dropped: got 1 events, want 0", "dead_lettered: got 1 events, want 0 (got input-2)"}, nil},
		{"wrong reason", "pipeline: p.yaml\ntests:\n  - name: reason\n" + input +
			"    dead_lettered:\n      - {component: \"transforms[1].filter\", reason: timeout}\n",
			1, []string{`component: got "transforms[0].decode", want "transforms[1].filter"`, `want it to contain "timeout"`}, nil},
		{"missing pipeline", "pipeline: nowhere.yaml\ntests:\n  - name: x\n" + input + "    dropped: 0\n",
			1, []string{"1 files with errors"}, []string{"t.yaml:1: pipeline: nowhere.yaml: no such file"}},
		{"unknown sink", "pipeline: p.yaml\ntests:\n  - name: x\n" + input + "    sink: sinks[3]\n    outputs: []\n",
			1, nil, []string{`t.yaml:8: sink: unknown component "sinks[3]" (the pipeline's sinks: sinks[0].file)`}},
		{"unknown dead-letter component", "pipeline: p.yaml\ntests:\n  - name: x\n" + input + "    dead_lettered:\n      - {component: \"transforms[0].decod\"}\n",
			1, nil, []string{`t.yaml:9: component: unknown component "transforms[0].decod"`}},
		{"unknown key", "pipeline: p.yaml\ntests:\n  - name: x\n" + input + "    outptus: []\n",
			1, nil, []string{"t.yaml:8: field outptus not found\n"}},
		{"asserts nothing", "pipeline: p.yaml\ntests:\n  - name: x\n" + input,
			1, nil, []string{"t.yaml:3: tests[0] (x): asserts nothing"}},
		{"bad condition", "pipeline: p.yaml\ntests:\n  - name: x\n" + input + "    outputs:\n      - condition: 'data.n >'\n",
			1, nil, []string{"t.yaml:9: tests[0].outputs[0].condition:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, "t.yaml")
			if err := os.WriteFile(f, []byte(tc.test), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			var out, errOut bytes.Buffer
			code := execute([]string{"test", "t.yaml"}, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
		})
	}
}
