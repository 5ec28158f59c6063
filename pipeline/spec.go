package pipeline

import (
	"go.yaml.in/yaml/v3"
)

// Spec is one component as a pipeline file declares it: `{name: {config}}`.
type Spec struct {
	// Name is the registered component name ("kafka", "decode").
	Name string
	// Config is the decoded config struct, a *C of the registration.
	Config any
	// Path is where the spec sits in the file ("sinks[0]"), Line its line.
	Path string
	Line int
}

// Label names the component in metrics and logs: "sinks[0].mongodb".
func (s *Spec) Label() string { return s.Path + "." + s.Name }

// SourceSpec, TransformSpec and SinkSpec are Specs whose name is looked up
// among the sources, transforms or sinks of the registry.
type (
	SourceSpec    struct{ Spec }
	TransformSpec struct{ Spec }
	SinkSpec      struct{ Spec }
)

type componentSpec interface {
	kind() Kind
	spec() *Spec
}

func (s *SourceSpec) kind() Kind    { return KindSource }
func (s *TransformSpec) kind() Kind { return KindTransform }
func (s *SinkSpec) kind() Kind      { return KindSink }
func (s *Spec) spec() *Spec         { return s }

func (d *decoder) decodeSpec(n *yaml.Node, cs componentSpec, path string) {
	kind := cs.kind()
	s := cs.spec()
	s.Path, s.Line = path, n.Line
	if isNull(n) {
		d.fail(n, path, "expected one %s, like `%s: {…}`", kind, firstOr(d.registry.Names(kind), "name"))
		return
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.fail(n, path, "expected exactly one %s as `name: {config}`, got %s", kind, d.describeSpec(n))
		return
	}
	k, val := n.Content[0], n.Content[1]
	reg, ok := d.registry.lookup(kind, k.Value)
	if !ok {
		d.fail(k, joinPath(path, k.Value), "unknown %s%s", kind, suggest(k.Value, d.registry.Names(kind)))
		return
	}
	s.Name = reg.name
	s.Config = reg.newConfig()
	if isNull(val) {
		// `- stdout:` with no settings: keep the defaults, but still check
		// required fields and Validate.
		val = &yaml.Node{Kind: yaml.MappingNode, Line: k.Line, Column: k.Column}
	}
	d.decode(val, reflectValueOf(s.Config), joinPath(path, k.Value))
}

func (d *decoder) describeSpec(n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		keys := ""
		for i := 0; i < len(n.Content); i += 2 {
			if keys != "" {
				keys += ", "
			}
			keys += n.Content[i].Value
		}
		return "several: " + keys
	}
	return d.describe(n)
}

func firstOr(names []string, fallback string) string {
	if len(names) > 0 {
		return names[0]
	}
	return fallback
}
