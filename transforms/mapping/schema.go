package mapping

import (
	"sort"

	"github.com/sluicehq/sluice/pipeline"
)

// MapSchema applies set, rename and delete to the known fields.
func (c *Config) MapSchema(in *pipeline.Schema) *pipeline.Schema {
	if in == nil {
		return nil
	}
	for _, s := range c.sets {
		in.Add(s.path)
	}
	for from, to := range c.Rename {
		in.Remove(from)
		in.Add(to + ".*") // whatever was under from is under to now
	}
	for _, d := range c.Delete {
		in.Remove(d)
	}
	return in
}

// ReadsFields are the paths the set expressions read (the body before the
// step), the fields renamed and the fields deleted.
func (c *Config) ReadsFields() []pipeline.FieldRef {
	var refs []pipeline.FieldRef
	for _, s := range c.sets {
		for _, p := range s.prog.Paths {
			refs = append(refs, pipeline.FieldRef{Key: "set." + s.path, Path: p})
		}
	}
	froms := make([]string, 0, len(c.Rename))
	for from := range c.Rename {
		froms = append(froms, from)
	}
	sort.Strings(froms)
	for _, from := range froms {
		refs = append(refs, pipeline.FieldRef{Key: "rename." + from, Path: from})
	}
	for _, d := range c.Delete {
		refs = append(refs, pipeline.FieldRef{Key: "delete", Path: d})
	}
	return refs
}
