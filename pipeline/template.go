package pipeline

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template names a destination per event: a Kafka topic, a MongoDB
// collection, an Elasticsearch index. `{{path}}` is replaced by the body
// field at path (gjson syntax), `{{id}}`/`{{key}}` by the event's id and key
// when the body has no such field, and `{layout}` by the event time (UTC)
// in a Go time layout: "crm-events-{2006.01.02}", "crm.{{source}}".
type Template struct {
	raw   string
	parts []templatePart
}

type templatePart struct {
	literal string
	field   string // {{field}}
	layout  string // {layout}
}

// ParseTemplate parses s; an unclosed brace or an empty placeholder is an
// error.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{raw: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{literal: rest[:i]})
		}
		rest = rest[i:]
		if strings.HasPrefix(rest, "{{") {
			end := strings.Index(rest, "}}")
			if end < 0 {
				return nil, fmt.Errorf("template %q: {{ without }}", s)
			}
			field := strings.TrimSpace(rest[2:end])
			if field == "" {
				return nil, fmt.Errorf("template %q: empty {{}}", s)
			}
			t.parts = append(t.parts, templatePart{field: field})
			rest = rest[end+2:]
			continue
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, fmt.Errorf("template %q: { without }", s)
		}
		layout := rest[1:end]
		if layout == "" {
			return nil, fmt.Errorf("template %q: empty {}", s)
		}
		t.parts = append(t.parts, templatePart{layout: layout})
		rest = rest[end+1:]
	}
	return t, nil
}

// MustParseTemplate is ParseTemplate for constants; it panics on error.
func MustParseTemplate(s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// Static reports whether the template has no placeholders: one name for all.
func (t *Template) Static() bool {
	for _, p := range t.parts {
		if p.literal == "" {
			return false
		}
	}
	return true
}

func (t *Template) String() string { return t.raw }

// UnmarshalYAML lets config structs hold a Template directly, so a bad
// template is a config error with file and line.
func (t *Template) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a name template like crm.{{source}} or crm-events-{2006.01.02}")
	}
	p, err := ParseTemplate(n.Value)
	if err != nil {
		return err
	}
	*t = *p
	return nil
}

// Render appends the name for ev to buf. A field that the event lacks is
// an error: writing to a topic named "crm." is worse than a dead letter.
func (t *Template) Render(buf []byte, ev *Event) ([]byte, error) {
	for _, p := range t.parts {
		switch {
		case p.field != "":
			v := ev.Get(p.field)
			switch {
			case v.Exists() && v.String() != "":
				buf = append(buf, v.String()...)
			case p.field == "id":
				buf = append(buf, ev.ID...)
			case p.field == "key" && len(ev.Key) > 0:
				buf = append(buf, ev.Key...)
			default:
				return buf, fmt.Errorf("template %q: event %s has no field %q", t.raw, ev.ID, p.field)
			}
		case p.layout != "":
			ts := ev.Time
			if ts.IsZero() {
				return buf, fmt.Errorf("template %q: event %s has no event time", t.raw, ev.ID)
			}
			buf = ts.UTC().AppendFormat(buf, p.layout)
		default:
			buf = append(buf, p.literal...)
		}
	}
	return buf, nil
}

// RenderString is Render into a new string.
func (t *Template) RenderString(ev *Event) (string, error) {
	if t.Static() {
		return t.raw, nil
	}
	b, err := t.Render(make([]byte, 0, len(t.raw)+16), ev)
	return string(b), err
}

// ParseFieldTemplate parses what config keys such as a record key or a
// document id accept: a body field path ("data.Id") or a template
// ("{{source}}:{{data.Id}}"). A value without braces is a field path.
func ParseFieldTemplate(s string) (*Template, error) {
	if !strings.Contains(s, "{") {
		s = "{{" + s + "}}"
	}
	return ParseTemplate(s)
}
