package generate

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `generate` source's YAML.
type Config struct {
	// Rate is the target rate ("3333/s", "200000/min"); unset = as fast
	// as the pipeline takes events.
	Rate *pipeline.Rate `yaml:"rate"`
	// Count stops the source after this many events (0 = never).
	Count int64 `yaml:"count"`
	// Mix is the share of each event family. Unset, it is crm 0.5, ats
	// 0.2, email 0.3; set, a family it leaves out gets no events
	// (mix: {email: 1} is email only).
	Mix        *Mix    `yaml:"mix"`
	Duplicates float64 `yaml:"duplicates"`
	Poison     float64 `yaml:"poison"`
	Entities   int     `yaml:"entities"`
	Accounts   int     `yaml:"accounts"`
	Seed       uint64  `yaml:"seed"`
	// BatchSize is the most events one Read returns.
	BatchSize int               `yaml:"batch_size"`
	MinSize   pipeline.ByteSize `yaml:"min_size"`
	MaxSize   pipeline.ByteSize `yaml:"max_size"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Duplicates = 0.02
	c.Entities = 10000
	c.Accounts = 200
	c.Seed = 1
	c.BatchSize = 500
	c.MinSize = 512
	c.MaxSize = 5 * 1024
}

// Validate checks ranges.
func (c *Config) Validate() error {
	var errs []error
	if c.Count < 0 {
		errs = append(errs, pipeline.FieldErrorf("count", "must be 0 (unlimited) or more"))
	}
	mix := c.mix()
	for _, f := range []struct {
		name string
		v    float64
	}{{"mix.crm", mix.CRM}, {"mix.ats", mix.ATS}, {"mix.email", mix.Email}} {
		if f.v < 0 {
			errs = append(errs, pipeline.FieldErrorf(f.name, "must not be negative"))
		}
	}
	if mix.CRM+mix.ATS+mix.Email <= 0 {
		errs = append(errs, pipeline.FieldErrorf("mix", "needs a positive share for at least one of crm, ats, email"))
	}
	if c.Duplicates < 0 || c.Duplicates >= 1 {
		errs = append(errs, pipeline.FieldErrorf("duplicates", "must be a ratio from 0 to below 1"))
	}
	if c.Poison < 0 || c.Poison >= 1 {
		errs = append(errs, pipeline.FieldErrorf("poison", "must be a ratio from 0 to below 1"))
	}
	if c.Entities <= 0 {
		errs = append(errs, pipeline.FieldErrorf("entities", "must be at least 1"))
	}
	if c.Accounts <= 0 {
		errs = append(errs, pipeline.FieldErrorf("accounts", "must be at least 1"))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, pipeline.FieldErrorf("batch_size", "must be at least 1"))
	}
	if c.MinSize < 256 {
		errs = append(errs, pipeline.FieldErrorf("min_size", "must be at least 256B"))
	}
	if c.MaxSize < c.MinSize {
		errs = append(errs, pipeline.FieldErrorf("max_size", "must be at least min_size"))
	}
	return errors.Join(errs...)
}

// DefaultMix is the mix of a config that sets none.
func DefaultMix() Mix { return Mix{CRM: 0.5, ATS: 0.2, Email: 0.3} }

// mix is the configured mix, or DefaultMix when the file sets none.
func (c *Config) mix() Mix {
	if c.Mix == nil {
		return DefaultMix()
	}
	return *c.Mix
}

// Register adds the generate source to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSource(r, "generate", "synthetic CRM, ATS and email events at a set rate", func(bc pipeline.BuildContext, c *Config) (pipeline.Source, error) {
		return New(bc, *c)
	})
}

// Source emits generated events.
type Source struct {
	cfg     Config
	gen     *Generator
	started time.Time
	sleep   func(ctx context.Context, d time.Duration) error
}

// Workload is the generator workload c describes: the bench regenerates
// it to know exactly what a run sent.
func (c Config) Workload() Workload {
	return Workload{
		Mix: c.mix(), Duplicates: c.Duplicates, Poison: c.Poison,
		Entities: c.Entities, Accounts: c.Accounts, Seed: c.Seed,
		MinSize: int(c.MinSize), MaxSize: int(c.MaxSize),
	}
}

// New returns a generate source for c.
func New(_ pipeline.BuildContext, c Config) (*Source, error) {
	return &Source{cfg: c, gen: NewGenerator(c.Workload(), time.Now), sleep: pipeline.Sleep}, nil
}

// Read returns the events due by now under the rate, at most batch_size.
// Generated events need no acknowledgement; the ack is a no-op.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if s.started.IsZero() {
		s.started = time.Now()
	}
	n := int64(s.cfg.BatchSize)
	if s.cfg.Count > 0 {
		left := s.cfg.Count - int64(s.gen.Emitted())
		if left <= 0 {
			return nil, nil, io.EOF
		}
		n = min(n, left)
	}
	if s.cfg.Rate != nil {
		// Wait until enough events are due that a Read is worth it: a
		// batch or 10 ms of traffic, whichever is smaller.
		perSec := s.cfg.Rate.PerSecond
		want := max(1, min(n, int64(perSec/100)))
		for {
			due := int64(time.Since(s.started).Seconds()*perSec) - int64(s.gen.Emitted())
			if due >= want {
				n = min(n, due)
				break
			}
			// Capped so that a tiny rate (1e-9/s) sleeps in steps instead
			// of overflowing the duration.
			wait := time.Duration(min(float64(want-due)/perSec, 1) * float64(time.Second))
			if err := s.sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
		}
	}
	events := make([]pipeline.Event, n)
	out := make([]*pipeline.Event, n)
	buf := make([]byte, 0, n*int64(s.cfg.MinSize+s.cfg.MaxSize)/2)
	for i := range events {
		buf = s.gen.Next(&events[i], buf)
		out[i] = &events[i]
	}
	return out, func(error) {}, nil
}

// Close does nothing: the generator holds no resources.
func (s *Source) Close(context.Context) error { return nil }
