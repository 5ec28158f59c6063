package dedupe

import "github.com/sluicehq/sluice/pipeline"

// MapSchema: dedupe drops repeats; the fields stay.
func (c *Config) MapSchema(in *pipeline.Schema) *pipeline.Schema { return in }
