package filter

import "github.com/sluicehq/sluice/pipeline"

// MapSchema: a filter keeps or drops events; the fields stay.
func (c *Config) MapSchema(in *pipeline.Schema) *pipeline.Schema { return in }

// ReadsFields are the body paths the keep expression reads.
func (c *Config) ReadsFields() []pipeline.FieldRef {
	if c.keep == nil {
		return nil // not compiled: Validate reported it
	}
	refs := make([]pipeline.FieldRef, len(c.keep.Paths))
	for i, p := range c.keep.Paths {
		refs[i] = pipeline.FieldRef{Key: "keep", Path: p}
	}
	return refs
}
