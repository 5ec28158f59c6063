package poller

import (
	"net/url"

	"github.com/sluicehq/sluice/pipeline"
)

// Vendor is what a polling source adds to the shared poll loop: its name
// (the sluice.vendor metadata and the metrics' vendor label), the objects
// it polls, whether its API returns records in modification order, and the
// Client that reads one page.
type Vendor struct {
	Name    string
	Objects []string
	Sorted  bool
	Client  Client
}

// NewSource builds the source of a vendor whose YAML inlines c. The
// vendor builds its Client first, so nothing is opened when that fails;
// then the cursor store is opened.
func (c *Config) NewSource(bc pipeline.BuildContext, v Vendor) (*Source, error) {
	o, err := c.Options(bc)
	if err != nil {
		return nil, err
	}
	o.Vendor, o.Objects, o.Sorted, o.Client = v.Name, v.Objects, v.Sorted, v.Client
	return New(o)
}

// Register adds a polling source named name to r; build turns its decoded
// config (a struct that inlines Config) into the source.
func Register[C any](r *pipeline.Registry, name, summary string, build func(pipeline.BuildContext, C) (*Source, error)) {
	pipeline.RegisterSource(r, name, summary, func(bc pipeline.BuildContext, c *C) (pipeline.Source, error) {
		s, err := build(bc, *c)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// CheckRequired is the field error of an empty credential key, nil when v
// is set: a vendor's Validate joins it with the others.
func CheckRequired(key, v string) error {
	if v == "" {
		return pipeline.FieldErrorf(key, "must not be empty")
	}
	return nil
}

// CheckBaseURL is the field error of a base URL without a host, nil when
// raw is an absolute URL.
func CheckBaseURL(key, raw string) error {
	if u, err := url.Parse(raw); err != nil || u.Host == "" {
		return pipeline.FieldErrorf(key, "must be a URL; got %q", raw)
	}
	return nil
}

// CheckPageSize is the field error of a page size outside 1 to most (the
// vendor API's own limit), nil inside.
func CheckPageSize(key string, n, most int) error {
	if n < 1 || n > most {
		return pipeline.FieldErrorf(key, "must be 1 to %d", most)
	}
	return nil
}
