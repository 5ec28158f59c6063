// Package filter keeps the events an expression accepts.
package filter

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transforms/internal/eval"
)

// Config is the `filter` transform's YAML.
type Config struct {
	// Keep is an expr-lang expression over the body's fields that must be
	// true for the event to pass: `type != "heartbeat"`.
	Keep string `yaml:"keep" required:"true"`

	keep *eval.Program
}

// Validate compiles the expression, so a mistake is a config error at the
// key's line.
func (c *Config) Validate() error {
	p, err := eval.Compile(c.Keep, true)
	if err != nil {
		return pipeline.FieldErrorf("keep", "%v", err)
	}
	c.keep = p
	return nil
}

// Register adds the filter transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "filter", "keep events for which an expression is true", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// Filter is the transform.
type Filter struct {
	keep *eval.Program
	log  *slog.Logger // warned on when everything is dropped
	all  dropAll
}

// New builds a filter for c, compiling it if Validate did not run.
func New(bc pipeline.BuildContext, c Config) (*Filter, error) {
	if c.keep == nil {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	return &Filter{keep: c.keep, log: bc.Logger}, nil
}

// Apply passes the events the expression accepts. An event the expression
// fails on (a type error, a non-boolean result) fails permanently: it goes
// to the dead letter with the reason.
func (f *Filter) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	var out []*pipeline.Event // nil until the first event is left out
	var be *pipeline.BatchError
	for i, ev := range in {
		keep, err := f.eval(ev)
		if err == nil && keep {
			if out != nil {
				out = append(out, ev)
			}
			continue
		}
		if out == nil {
			out = make([]*pipeline.Event, i, len(in))
			copy(out, in[:i])
		}
		if err != nil {
			if be == nil {
				be = pipeline.NewBatchError()
			}
			be.Fail(i, pipeline.Permanent(err))
		}
	}
	if out == nil {
		f.all.observe(f.log, len(in), 0)
		return in, nil
	}
	failed := 0
	if be != nil {
		failed = len(be.Failures)
	}
	f.all.observe(f.log, len(in), len(in)-len(out)-failed)
	return out, be.Err()
}

func (f *Filter) eval(ev *pipeline.Event) (bool, error) {
	b, err := f.keep.RunBool(ev)
	if err != nil {
		return false, fmt.Errorf("filter %q: %v", f.keep, err)
	}
	return b, nil
}
