package testrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Result is the outcome of one test case.
type Result struct {
	File, Name string
	Line       int
	// Failures are the differences found, each a readable line or block;
	// empty when the case passed.
	Failures []string
}

// Passed reports whether the case found no difference.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Timeout bounds one case; only a real hang reaches it.
const Timeout = 60 * time.Second

// Run runs every case of f against the pipeline it names, built through
// reg. getenv resolves ${VAR} after f.Env. An error means the cases could
// not run at all: the pipeline file does not load, or the test file names a
// component the pipeline lacks (with the test file's line).
func Run(ctx context.Context, f *File, reg *pipeline.Registry, getenv func(string) (string, bool)) ([]*Result, error) {
	lookup := func(k string) (string, bool) {
		if v, ok := f.Env[k]; ok {
			return v, true
		}
		return getenv(k)
	}
	cfg, err := pipeline.LoadFile(f.Pipeline, reg, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: pipeline %s does not load:\n%w", f.Path, f.pipelineLine, f.Pipeline, err)
	}
	if err := f.checkComponents(cfg); err != nil {
		return nil, err
	}
	var results []*Result
	for _, c := range f.Tests {
		cfg, err := pipeline.LoadFile(f.Pipeline, reg, lookup) // a fresh config per case
		if err != nil {
			return nil, err
		}
		r := &Result{File: f.Path, Name: c.Name, Line: c.Line}
		r.Failures = runCase(ctx, cfg, reg, c)
		results = append(results, r)
	}
	return results, nil
}

// checkComponents reports the sinks and components the test file names that
// the pipeline does not have.
func (f *File) checkComponents(cfg *pipeline.Config) error {
	var labels []string
	for _, t := range cfg.Transforms {
		labels = append(labels, t.Label())
	}
	var sinks []string
	for _, s := range cfg.Sinks {
		sinks = append(sinks, s.Label())
	}
	labels = append(labels, sinks...)
	var errs []string
	for _, c := range f.Tests {
		if c.Sink != "" && !matchesLabel(c.Sink, sinks) {
			errs = append(errs, (&Error{File: f.Path, Line: c.sinkLine, Msg: fmt.Sprintf("sink: unknown component %q (the pipeline's sinks: %s)", c.Sink, strings.Join(sinks, ", "))}).Error())
		}
		for _, d := range c.DeadLettered {
			if d.Component != "" && !matchesLabel(d.Component, labels) {
				errs = append(errs, (&Error{File: f.Path, Line: d.Line, Msg: fmt.Sprintf("component: unknown component %q (the pipeline has %s)", d.Component, strings.Join(labels, ", "))}).Error())
			}
		}
		if c.hasDead && len(c.DeadLettered) > 0 && cfg.DeadLetter == nil {
			errs = append(errs, (&Error{File: f.Path, Line: c.Line, Msg: "expects dead letters, but the pipeline has no dead_letter sink (it would stop instead)"}).Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// matchesLabel: "sinks[0]" or "sinks[0].file" names sinks[0].file.
func matchesLabel(name string, labels []string) bool {
	for _, l := range labels {
		if l == name || strings.HasPrefix(l, name+".") {
			return true
		}
	}
	return false
}

func runCase(ctx context.Context, cfg *pipeline.Config, reg *pipeline.Registry, c *Case) []string {
	events, err := inputEvents(c.Input)
	if err != nil {
		return []string{err.Error()}
	}
	// One lane, one batch, short bounded retries: outputs come in input
	// order and a retryable failure ends as a dead letter, not a hang.
	cfg.Delivery.Lanes, cfg.Delivery.MaxInFlight = 1, 1
	cfg.Batch.MaxEvents = len(events) + 1
	cfg.Batch.MaxBytes = 1 << 40
	cfg.Retry = pipeline.RetryConfig{InitialInterval: pipeline.Duration(time.Millisecond), MaxInterval: pipeline.Duration(10 * time.Millisecond), MaxAttempts: 3}
	cfg.Metrics.Listen = ""

	sinks := map[string]*capture{}
	dead := &capture{}
	src := &memSource{batch: events}
	p, err := pipeline.Build(ctx, cfg, reg,
		pipeline.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		pipeline.WithOverride(func(kind pipeline.Kind, s *pipeline.Spec) (any, bool) {
			switch {
			case kind == pipeline.KindSource:
				return src, true
			case kind == pipeline.KindSink && s.Path == "dead_letter":
				return dead, true
			case kind == pipeline.KindSink:
				cp := &capture{}
				sinks[s.Label()] = cp
				return cp, true
			}
			return nil, false
		}))
	if err != nil {
		return []string{fmt.Sprintf("build the pipeline: %v", err)}
	}
	runCtx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := p.Run(runCtx); err != nil {
		return []string{fmt.Sprintf("the pipeline stopped: %v", err)}
	}
	if runCtx.Err() != nil {
		return []string{fmt.Sprintf("the pipeline did not finish within %s", Timeout)}
	}
	return assertCase(ctx, c, sinks, dead, p.Stats())
}

// assertCase compares what the captures got with the case's expectations.
func assertCase(ctx context.Context, c *Case, sinks map[string]*capture, dead *capture, st pipeline.Stats) []string {
	var fails []string
	if c.hasOutputs {
		labels := make([]string, 0, len(sinks))
		for l := range sinks {
			if c.Sink == "" || l == c.Sink || strings.HasPrefix(l, c.Sink+".") {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		for _, l := range labels {
			prefix := ""
			if len(labels) > 1 {
				prefix = l + ": "
			}
			fails = append(fails, checkOutputs(ctx, prefix, c.Outputs, sinks[l].events())...)
		}
	}
	if c.Dropped != nil {
		if got := st.Dropped; got != int64(*c.Dropped) {
			fails = append(fails, fmt.Sprintf("dropped: got %d events, want %d", got, *c.Dropped))
		}
	}
	if c.hasDead {
		fails = append(fails, checkDeadLetters(c.DeadLettered, dead.events())...)
	}
	return fails
}

// inputEvents are the events a case feeds the transforms.
func inputEvents(inputs []Input) ([]*pipeline.Event, error) {
	events := make([]*pipeline.Event, len(inputs))
	for i := range inputs {
		in := &inputs[i]
		payload, err := in.payload()
		if err != nil {
			return nil, fmt.Errorf("input[%d]: %w", i, err)
		}
		id := in.ID
		if id == "" {
			id = fmt.Sprintf("input-%d", i)
		}
		ev := &pipeline.Event{ID: id, Payload: payload}
		if in.Key != "" {
			ev.Key = []byte(in.Key)
		}
		keys := make([]string, 0, len(in.Meta))
		for k := range in.Meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ev.Meta.Set(k, in.Meta[k])
		}
		events[i] = ev
	}
	return events, nil
}

func checkOutputs(ctx context.Context, prefix string, want []*Output, got []*pipeline.Event) []string {
	var fails []string
	if len(got) != len(want) {
		fails = append(fails, fmt.Sprintf("%soutputs: got %d events, want %d%s", prefix, len(got), len(want), listIDs(got)))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		ev, w := got[i], want[i]
		var diffs []string
		if w.ID != "" && ev.ID != w.ID {
			diffs = append(diffs, fmt.Sprintf("id: got %q, want %q", ev.ID, w.ID))
		}
		paths := make([]string, 0, len(w.Fields))
		for p := range w.Fields {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, path := range paths {
			if d := diffField(ev, path, w.Fields[path]); d != "" {
				diffs = append(diffs, d)
			}
		}
		if w.cond != nil {
			out, err := w.cond.Apply(ctx, []*pipeline.Event{ev})
			switch {
			case err != nil:
				diffs = append(diffs, fmt.Sprintf("condition %q: %v", w.Condition, err))
			case len(out) == 0:
				diffs = append(diffs, fmt.Sprintf("condition %q: false", w.Condition))
			}
		}
		if len(diffs) > 0 {
			fails = append(fails, fmt.Sprintf("%soutputs[%d] (line %d), event %s:\n      - %s\n      event: %s",
				prefix, i, w.Line, ev.ID, strings.Join(diffs, "\n      - "), bodyOf(ev)))
		}
	}
	return fails
}

// diffField compares the body field at path with want (YAML-decoded), as
// JSON values: 1 equals 1.0, key order does not matter.
func diffField(ev *pipeline.Event, path string, want any) string {
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return fmt.Sprintf("%s: the expected value is not JSON: %v", path, err)
	}
	res := ev.Get(path)
	if !res.Exists() {
		if want == nil {
			return ""
		}
		return fmt.Sprintf("%s: missing, want %s", path, wantJSON)
	}
	var g, w any
	_ = json.Unmarshal([]byte(res.Raw), &g)
	_ = json.Unmarshal(wantJSON, &w)
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("%s: got %s, want %s", path, res.Raw, wantJSON)
	}
	return ""
}

func checkDeadLetters(want []*DeadLetter, got []*pipeline.Event) []string {
	var fails []string
	if len(got) != len(want) {
		fails = append(fails, fmt.Sprintf("dead_lettered: got %d events, want %d%s", len(got), len(want), listIDs(got)))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		var dl pipeline.DeadLetter
		if err := json.Unmarshal(got[i].Body, &dl); err != nil {
			fails = append(fails, fmt.Sprintf("dead_lettered[%d]: not a dead letter: %v", i, err))
			continue
		}
		w := want[i]
		var diffs []string
		if w.ID != "" && dl.ID != w.ID {
			diffs = append(diffs, fmt.Sprintf("id: got %q, want %q", dl.ID, w.ID))
		}
		if w.Component != "" && dl.Component != w.Component && !strings.HasPrefix(dl.Component, w.Component+".") {
			diffs = append(diffs, fmt.Sprintf("component: got %q, want %q", dl.Component, w.Component))
		}
		if w.Reason != "" && !strings.Contains(dl.Reason, w.Reason) {
			diffs = append(diffs, fmt.Sprintf("reason: got %q, want it to contain %q", dl.Reason, w.Reason))
		}
		if len(diffs) > 0 {
			fails = append(fails, fmt.Sprintf("dead_lettered[%d] (line %d), event %s:\n      - %s", i, w.Line, dl.ID, strings.Join(diffs, "\n      - ")))
		}
	}
	return fails
}

func listIDs(evs []*pipeline.Event) string {
	if len(evs) == 0 {
		return ""
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return " (got " + strings.Join(ids, ", ") + ")"
}

func bodyOf(ev *pipeline.Event) string {
	b := ev.Body
	if b == nil {
		b = ev.Payload
	}
	const limit = 2000
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

// memSource serves the test's input as one batch, then io.EOF.
type memSource struct {
	batch []*pipeline.Event
	done  bool
}

func (s *memSource) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if s.done {
		return nil, nil, io.EOF
	}
	s.done = true
	return s.batch, func(error) {}, nil
}

func (s *memSource) Close(context.Context) error { return nil }

// capture is a sink that keeps copies of what it is given.
type capture struct {
	mu  sync.Mutex
	got []*pipeline.Event
}

func (c *capture) Write(_ context.Context, batch []*pipeline.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range batch {
		cp := *ev
		// Fields are read from what a sink writes: the body, or the
		// payload of an event no step decoded.
		body := ev.Body
		if body == nil && json.Valid(ev.Payload) {
			body = ev.Payload
		}
		cp.Body = append([]byte(nil), body...)
		cp.Meta = append(pipeline.Meta(nil), ev.Meta...)
		c.got = append(c.got, &cp)
	}
	return nil
}

func (c *capture) Close(context.Context) error { return nil }

func (c *capture) events() []*pipeline.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pipeline.Event(nil), c.got...)
}
