// Package mapping reshapes event bodies: it sets fields to the results of
// expressions, renames fields and deletes them. It is registered as "map".
package mapping

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transforms/internal/eval"
)

// Config is the `map` transform's YAML. Set runs first, then Rename, then
// Delete. Every Set expression reads the body as it was before the step.
type Config struct {
	// Set maps a field path to an expr-lang expression whose result is
	// stored there: {full_name: 'data.first + " " + data.last'}.
	Set map[string]string `yaml:"set"`
	// Rename moves a field from one path to another: {data.Email: email}.
	Rename map[string]string `yaml:"rename"`
	// Delete removes fields.
	Delete []string `yaml:"delete"`

	sets []setter
}

// NeedsDecodedBody: this step reads the decoded event, so `sluice validate`
// wants a decode step before it.
func (c *Config) NeedsDecodedBody() bool { return true }

type setter struct {
	path string
	prog *eval.Program
}

// Validate compiles every expression, reporting each mistake at its key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Set) == 0 && len(c.Rename) == 0 && len(c.Delete) == 0 {
		errs = append(errs, pipeline.FieldErrorf("set", "map needs at least one of set, rename or delete"))
	}
	paths := make([]string, 0, len(c.Set))
	for p := range c.Set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	c.sets = c.sets[:0]
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, pipeline.FieldErrorf("set", "empty field path"))
			continue
		}
		prog, err := eval.Compile(c.Set[p], false)
		if err != nil {
			errs = append(errs, pipeline.FieldErrorf("set."+p, "%v", err))
			continue
		}
		c.sets = append(c.sets, setter{path: p, prog: prog})
	}
	for from, to := range c.Rename {
		if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			errs = append(errs, pipeline.FieldErrorf("rename."+from, "needs a field path on both sides"))
		}
	}
	for i, d := range c.Delete {
		if strings.TrimSpace(d) == "" {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("delete[%d]", i), "empty field path"))
		}
	}
	return errors.Join(errs...)
}

// Register adds the map transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "map", "set fields from expressions, rename and delete fields", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(*c)
	})
}

// Map is the transform.
type Map struct {
	sets    []setter
	renames [][2]string
	deletes []string
}

// New builds a map step for c, compiling it if Validate did not run.
func New(c Config) (*Map, error) {
	if len(c.sets) != len(c.Set) {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	m := &Map{sets: c.sets, deletes: c.Delete}
	for from, to := range c.Rename {
		m.renames = append(m.renames, [2]string{from, to})
	}
	sort.Slice(m.renames, func(i, j int) bool { return m.renames[i][0] < m.renames[j][0] })
	return m, nil
}

// Apply reshapes each event. An expression that fails on an event, or a
// body that cannot take a field, fails that event permanently.
func (m *Map) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	vals := make([]any, len(m.sets))
	return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		return pipeline.Permanent(m.apply(ev, vals))
	})
}

func (m *Map) apply(ev *pipeline.Event, vals []any) error {
	if ev.Body == nil {
		return fmt.Errorf("map: event %s has no decoded body (add a decode step first)", ev.ID)
	}
	for i, s := range m.sets {
		v, err := s.prog.Run(ev)
		if err != nil {
			return fmt.Errorf("map: set %s = %q: %v", s.path, s.prog, err)
		}
		vals[i] = v
	}
	for i, s := range m.sets {
		if err := ev.Set(s.path, vals[i]); err != nil {
			return fmt.Errorf("map: %w", err)
		}
		vals[i] = nil
	}
	for _, r := range m.renames {
		v := ev.Get(r[0])
		if !v.Exists() {
			continue
		}
		raw := []byte(v.Raw)
		if err := ev.Delete(r[0]); err != nil {
			return fmt.Errorf("map: rename: %w", err)
		}
		if err := ev.SetRaw(r[1], raw); err != nil {
			return fmt.Errorf("map: rename: %w", err)
		}
	}
	for _, d := range m.deletes {
		if err := ev.Delete(d); err != nil {
			return fmt.Errorf("map: %w", err)
		}
	}
	return nil
}
