package pipeline

import (
	"fmt"
	"sort"
	"strings"
)

// Schema is what is known of the fields of the events' bodies at one point
// of a pipeline. A nil *Schema means nothing is known (a decoded payload can
// hold anything), and then no field is reported.
type Schema struct {
	fields map[string]bool // every known path, parents included
	open   map[string]bool // paths under which any field may exist
}

// NewSchema is a schema with the given field paths; a path ending in ".*"
// opens it: any field may exist under it ("attributes.*").
func NewSchema(paths ...string) *Schema {
	s := &Schema{fields: map[string]bool{}, open: map[string]bool{}}
	for _, p := range paths {
		s.Add(p)
	}
	return s
}

// Add records path (and its parents) as produced.
func (s *Schema) Add(path string) {
	if strings.HasSuffix(path, ".*") {
		path = strings.TrimSuffix(path, ".*")
		s.open[path] = true
	}
	for p := path; p != ""; {
		s.fields[p] = true
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
}

// Remove forgets path and everything under it.
func (s *Schema) Remove(path string) {
	for f := range s.fields {
		if f == path || strings.HasPrefix(f, path+".") {
			delete(s.fields, f)
		}
	}
	for f := range s.open {
		if f == path || strings.HasPrefix(f, path+".") {
			delete(s.open, f)
		}
	}
}

// Has reports whether a field at path may exist.
func (s *Schema) Has(path string) bool {
	if s.fields[path] {
		return true
	}
	for p := path; ; {
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			return false
		}
		p = p[:i]
		if s.open[p] {
			return true
		}
	}
}

// Clone copies s (nil stays nil).
func (s *Schema) Clone() *Schema {
	if s == nil {
		return nil
	}
	c := NewSchema()
	for f := range s.fields {
		c.fields[f] = true
	}
	for f := range s.open {
		c.open[f] = true
	}
	return c
}

func (s *Schema) closest(path string) string {
	best, bestDist := "", 1<<30
	for f := range s.fields {
		if d := editDistance(path, f); d < bestDist || d == bestDist && f < best {
			best, bestDist = f, d
		}
	}
	if best != "" && bestDist <= max(2, len(path)/4) {
		return best
	}
	return ""
}

// SchemaMapper is implemented by transform configs that know what their
// step does to the body's fields: enrich replaces it with the canonical
// schema, map sets, renames and deletes, filter and dedupe keep it. in may
// be nil (unknown); return nil when the output is not known. A transform
// whose config does not implement it makes the schema unknown after it.
type SchemaMapper interface {
	MapSchema(in *Schema) *Schema
}

// FieldRef is a body field a config reads, and the key that names it
// ("keep", "set.display_email", "rename.data.Email").
type FieldRef struct {
	Key  string
	Path string
}

// FieldReader is implemented by transform configs that read body fields
// (filter and map expressions, map's rename and delete).
type FieldReader interface {
	ReadsFields() []FieldRef
}

// Warning is a finding of Lint: the file is valid, but probably not what
// was meant.
type Warning struct {
	File string
	Line int
	Path string
	Msg  string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: warning: %s: %s", w.File, w.Line, w.Path, w.Msg)
}

// Lint looks for what validates but is probably wrong: a filter or map that
// names a field no earlier step produces, where the body's fields are known
// (after enrich: the canonical event schema).
func Lint(cfg *Config) []Warning {
	var out []Warning
	var schema *Schema
	var from string // the step the schema is known from
	for i := range cfg.Transforms {
		s := &cfg.Transforms[i].Spec
		if r, ok := s.Config.(FieldReader); ok && schema != nil {
			refs := r.ReadsFields()
			sort.SliceStable(refs, func(a, b int) bool { return refs[a].Key < refs[b].Key })
			for _, ref := range refs {
				if schema.Has(ref.Path) {
					continue
				}
				msg := fmt.Sprintf("reads %s, which no earlier step produces (after %s the body is known)", ref.Path, from)
				if c := schema.closest(ref.Path); c != "" {
					msg += fmt.Sprintf("; did you mean %s?", c)
				}
				out = append(out, Warning{File: cfg.File, Line: s.Line, Path: s.Label() + "." + ref.Key, Msg: msg})
			}
		}
		m, ok := s.Config.(SchemaMapper)
		if !ok {
			schema = nil
			continue
		}
		before := schema
		schema = m.MapSchema(schema.Clone())
		if schema != nil && before == nil {
			from = s.Label()
		}
	}
	return out
}
