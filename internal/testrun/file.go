// Package testrun runs pipeline unit tests (`sluice test`): a test file names
// a pipeline file, feeds its transforms given input events in place of its
// source, captures what would reach its sinks and its dead letter, and checks
// the outputs against expectations.
package testrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transforms/filter"
)

// File is one test file.
type File struct {
	// Path is the test file, Pipeline the pipeline file it names (relative
	// to the test file's directory).
	Path     string
	Pipeline string
	// Env fills ${VAR} references of the pipeline before the process
	// environment does.
	Env   map[string]string
	Tests []*Case

	pipelineLine int
}

// Case is one test: input events and what must come out.
type Case struct {
	Name  string
	Line  int
	Input []Input
	// Outputs, when set, are the events every sink receives, in order.
	Outputs []*Output
	// Sink picks the one sink whose writes Outputs describe ("sinks[1]" or
	// its label "sinks[1].file"); empty: every sink must receive them.
	Sink     string
	sinkLine int
	// Dropped, when set, is how many input events transforms left out.
	Dropped *int
	// DeadLettered, when set, are the events that failed permanently.
	DeadLettered []*DeadLetter

	hasOutputs, hasDead bool
}

// Input is one event handed to the transforms.
type Input struct {
	ID      string            `yaml:"id"`
	Key     string            `yaml:"key"`
	Payload string            `yaml:"payload"` // raw bytes as received
	JSON    any               `yaml:"json"`    // or a value, marshalled to JSON
	Meta    map[string]string `yaml:"meta"`
}

// Output is what one written event must look like.
type Output struct {
	Line int
	// Fields maps body paths (data.email) to the value they must equal.
	Fields map[string]any
	// Condition is an expression (the filter transform's language) that
	// must be true for the event.
	Condition string
	// ID, when set, is the event id it must have.
	ID string

	cond *filter.Filter
}

// DeadLetter is what one dead-lettered event must look like.
type DeadLetter struct {
	Line int
	ID   string
	// Component is the label of the step that failed it
	// ("transforms[0].decode"), or its prefix ("transforms[0]").
	Component string
	// Reason must be contained in the recorded reason.
	Reason string
}

// Error is a mistake in a test file, at its line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// rawFile and friends are the YAML shapes; decoded strictly (unknown keys
// are errors), their lines are taken from the node tree.
type rawFile struct {
	Pipeline string            `yaml:"pipeline"`
	Env      map[string]string `yaml:"env"`
	Tests    []rawCase         `yaml:"tests"`
}

type rawCase struct {
	Name         string          `yaml:"name"`
	Input        []Input         `yaml:"input"`
	Outputs      *[]rawOutput    `yaml:"outputs"`
	Sink         string          `yaml:"sink"`
	Dropped      *int            `yaml:"dropped"`
	DeadLettered *[]rawDeadEvent `yaml:"dead_lettered"`
}

type rawOutput struct {
	ID        string         `yaml:"id"`
	Fields    map[string]any `yaml:"fields"`
	Condition string         `yaml:"condition"`
}

type rawDeadEvent struct {
	ID        string `yaml:"id"`
	Component string `yaml:"component"`
	Reason    string `yaml:"reason"`
}

// Load reads and checks a test file: every mistake comes back as an *Error
// with its line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("read test file: %v", err)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(path, err)
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(path, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: path, Line: 1, Msg: "the file is empty"}
	}
	doc := root.Content[0]
	f := &File{Path: path, Env: raw.Env, pipelineLine: lineOf(doc, "pipeline")}
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &Error{File: path, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	if raw.Pipeline == "" {
		fail(1, "pipeline: required: the pipeline file the tests run")
	} else {
		f.Pipeline = raw.Pipeline
		if !filepath.IsAbs(f.Pipeline) {
			f.Pipeline = filepath.Join(filepath.Dir(path), f.Pipeline)
		}
		if _, err := os.Stat(f.Pipeline); err != nil {
			fail(f.pipelineLine, "pipeline: %s: no such file (paths are relative to the test file)", raw.Pipeline)
		}
	}
	if len(raw.Tests) == 0 {
		fail(max(1, lineOf(doc, "tests")), "tests: at least one test is required")
	}
	testsNode := child(doc, "tests")
	for i, rc := range raw.Tests {
		f.Tests = append(f.Tests, loadCase(i, rc, item(testsNode, i), fail))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// loadCase checks one test of a file; fail records a mistake at a line.
func loadCase(i int, rc rawCase, tn *yaml.Node, fail func(line int, format string, args ...any)) *Case {
	c := &Case{Name: rc.Name, Line: tn.Line, Input: rc.Input, Sink: rc.Sink, sinkLine: lineOf(tn, "sink"), Dropped: rc.Dropped}
	if c.Name == "" {
		c.Name = fmt.Sprintf("tests[%d]", i)
	}
	if len(rc.Input) == 0 {
		fail(tn.Line, "tests[%d] (%s): input: at least one event is required", i, c.Name)
	}
	for j, in := range rc.Input {
		if (in.Payload == "") == (in.JSON == nil) {
			fail(item(child(tn, "input"), j).Line, "tests[%d].input[%d]: give exactly one of payload or json", i, j)
		}
	}
	if rc.Outputs == nil && rc.Dropped == nil && rc.DeadLettered == nil {
		fail(tn.Line, "tests[%d] (%s): asserts nothing: give outputs, dropped or dead_lettered", i, c.Name)
	}
	if rc.Outputs != nil {
		c.hasOutputs = true
		on := child(tn, "outputs")
		for j, ro := range *rc.Outputs {
			o := &Output{Line: item(on, j).Line, ID: ro.ID, Fields: ro.Fields, Condition: ro.Condition}
			if ro.Condition != "" {
				fl, err := filter.New(pipeline.NewBuildContext(c.Name, "condition", nil, nil), filter.Config{Keep: ro.Condition})
				if err != nil {
					fail(lineOf(item(on, j), "condition"), "tests[%d].outputs[%d].condition: %v", i, j, err)
				}
				o.cond = fl
			}
			c.Outputs = append(c.Outputs, o)
		}
	}
	if rc.DeadLettered != nil {
		c.hasDead = true
		dn := child(tn, "dead_lettered")
		for j, rd := range *rc.DeadLettered {
			c.DeadLettered = append(c.DeadLettered, &DeadLetter{Line: item(dn, j).Line, ID: rd.ID, Component: rd.Component, Reason: rd.Reason})
		}
	}
	return c
}

// payload is the payload of an input event.
func (in *Input) payload() ([]byte, error) {
	if in.JSON == nil {
		return []byte(in.Payload), nil
	}
	return json.Marshal(in.JSON)
}

func yamlError(path string, err error) error {
	msg := err.Error()
	// "yaml: line 7: …" and "yaml: unmarshal errors:\n  line 7: field x not found in type …"
	var errs []error
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "yaml:"))
		var line int
		if n, _ := fmt.Sscanf(l, "line %d:", &line); n == 1 {
			rest := strings.TrimSpace(l[strings.Index(l, ":")+1:])
			if i := strings.Index(rest, " in type testrun."); i >= 0 {
				rest = rest[:i] // the Go type means nothing to the reader
			}
			errs = append(errs, &Error{File: path, Line: line, Msg: rest})
		}
	}
	if len(errs) == 0 {
		return &Error{File: path, Msg: msg}
	}
	return errors.Join(errs...)
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lineOf(n *yaml.Node, key string) int {
	if c := child(n, key); c != nil {
		return c.Line
	}
	if n != nil {
		return n.Line
	}
	return 0
}

func item(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return &yaml.Node{}
	}
	return n.Content[i]
}
