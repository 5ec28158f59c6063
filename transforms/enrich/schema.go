package enrich

import "github.com/sluicehq/sluice/pipeline"

// CanonicalFields are the body paths of a canonical event
// (docs/canonical-events.md); attributes and account hold open sets of
// fields.
var canonicalFields = []string{
	"id", "source", "type", "entity.kind", "entity.id",
	"actor.email", "actor.domain", "actor.free_mail",
	"recipient.email", "recipient.domain", "recipient.free_mail",
	"account_id", "account.*", "occurred_at", "attributes.*", "ingested_at", "pipeline",
}

// MapSchema: after enrich the body is the canonical event (under Into, next
// to the original body, when set). With unknown: pass, events of other
// sources keep their body, so nothing is known.
func (c *Config) MapSchema(in *pipeline.Schema) *pipeline.Schema {
	if c.Unknown == "pass" {
		return nil
	}
	if c.Into == "" {
		return pipeline.NewSchema(canonicalFields...)
	}
	if in == nil {
		return nil
	}
	in.Remove(c.Into)
	for _, f := range canonicalFields {
		in.Add(c.Into + "." + f)
	}
	return in
}
