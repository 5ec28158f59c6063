package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pipeline is a built pipeline: its components constructed from a Config
// and ready to Run once.
type Pipeline struct {
	name       string
	cfg        *Config
	source     stage[Source]
	transforms []stage[Transform]
	sinks      []stage[Sink]
	deadLetter *stage[Sink]
	// dlMemory is the first transform that remembers written dead letters.
	dlMemory DeadLetterMemory
	log      *slog.Logger
	metrics  *metrics
	ready    atomic.Bool
	// waiting counts batches queued or in a lane; lastWrite is when a sink
	// last completed a write (unix ns): together they tell a stalled sink.
	waiting   atomic.Int64
	lastWrite atomic.Int64
	stats     stats
	observer  func(events []*Event, err error)
	tap       *tapHub // nil unless metrics.tap
}

type stage[T any] struct {
	label   string
	c       T
	m       *stageMetrics
	settler Settler // set for transforms that implement it
}

// Option adjusts how a pipeline is built.
type Option func(*buildOptions)

type buildOptions struct {
	logger   *slog.Logger
	registry prometheus.Registerer
	observer func(events []*Event, err error)
	override func(kind Kind, s *Spec) (any, bool)
}

// WithSettleObserver calls fn when each batch is settled, with its events
// that were written or dead-lettered when err is nil (not those a transform
// dropped), or with all of them, abandoned, otherwise,
// from the lane goroutine, just before their sources are acked (after an
// ack a source may reuse an event): fn must be quick and keep no event. The bench harness measures
// end-to-end latency with it.
func WithSettleObserver(fn func(events []*Event, err error)) Option {
	return func(o *buildOptions) { o.observer = fn }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *buildOptions) { o.logger = l } }

// WithMetricsRegisterer sets where the pipeline's series are registered
// (default: a fresh registry, so pipelines never collide in a process).
func WithMetricsRegisterer(r prometheus.Registerer) Option {
	return func(o *buildOptions) { o.registry = r }
}

// Build constructs every component of cfg through reg. On error the
// components already built are closed.
func Build(ctx context.Context, cfg *Config, reg *Registry, opts ...Option) (p *Pipeline, err error) {
	o := buildOptions{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(o.registry, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("register metrics of pipeline %s: %w", cfg.Name, err)
	}
	built := &Pipeline{name: cfg.Name, cfg: cfg, log: o.logger.With("pipeline", cfg.Name), metrics: m, observer: o.observer}
	p = built
	if cfg.Metrics.Tap {
		built.tap = newTapHub()
	}
	defer func() {
		// Not p: `return nil, err` has cleared it by now.
		if err != nil {
			_ = built.closeAll(ctx)
		}
	}()
	build := func(s *Spec, kind Kind) (any, string, error) {
		if o.override != nil {
			if c, ok := o.override(kind, s); ok {
				return c, s.Label(), nil
			}
		}
		r, ok := reg.lookup(kind, s.Name)
		if !ok {
			return nil, "", fmt.Errorf("%s:%d: %s: unknown %s %q", cfg.File, s.Line, s.Path, kind, s.Name)
		}
		label := s.Label()
		bc := NewBuildContext(cfg.Name, label,
			built.log.With("component", label),
			prometheus.WrapRegistererWith(prometheus.Labels{"pipeline": cfg.Name, "component": label}, o.registry),
		)
		bc.Lanes = cfg.Delivery.Lanes
		c, err := r.build(bc, s.Config)
		if err != nil {
			return nil, "", fmt.Errorf("%s:%d: build %s: %w", cfg.File, s.Line, label, err)
		}
		return c, label, nil
	}
	c, label, err := build(&cfg.Source.Spec, KindSource)
	if err != nil {
		return nil, err
	}
	built.source = stage[Source]{label: label, c: c.(Source), m: m.stage(label)}
	for i := range cfg.Transforms {
		c, label, err := build(&cfg.Transforms[i].Spec, KindTransform)
		if err != nil {
			return nil, err
		}
		st := stage[Transform]{label: label, c: c.(Transform), m: m.stage(label)}
		st.settler, _ = c.(Settler)
		if dm, ok := c.(DeadLetterMemory); ok && built.dlMemory == nil {
			built.dlMemory = dm
		}
		built.transforms = append(built.transforms, st)
	}
	wireLayouts(built.transforms)
	for i := range cfg.Sinks {
		c, label, err := build(&cfg.Sinks[i].Spec, KindSink)
		if err != nil {
			return nil, err
		}
		built.sinks = append(built.sinks, stage[Sink]{label: label, c: c.(Sink), m: m.stage(label)})
	}
	if cfg.DeadLetter != nil {
		c, label, err := build(&cfg.DeadLetter.Spec, KindSink)
		if err != nil {
			return nil, err
		}
		built.deadLetter = &stage[Sink]{label: label, c: c.(Sink), m: m.stage(label)}
	}
	return p, nil
}

// Name is the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// Ready reports whether the pipeline started its components and is
// processing; /readyz answers from it.
func (p *Pipeline) Ready() bool { return p.ready.Load() }

// Readiness is nil when the pipeline runs and every component that reports
// readiness is ready; otherwise it says what is not.
func (p *Pipeline) Readiness() error {
	if !p.Ready() {
		return errors.New("pipeline not running")
	}
	if err := p.stalled(time.Now()); err != nil {
		return err
	}
	check := func(label string, c any) error {
		if r, ok := c.(ReadinessReporter); ok {
			if err := r.Ready(); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
		}
		return nil
	}
	if err := check(p.source.label, p.source.c); err != nil {
		return err
	}
	for _, t := range p.transforms {
		if err := check(t.label, t.c); err != nil {
			return err
		}
	}
	for _, s := range p.sinks {
		if err := check(s.label, s.c); err != nil {
			return err
		}
	}
	if p.deadLetter != nil {
		return check(p.deadLetter.label, p.deadLetter.c)
	}
	return nil
}

// stalled reports a sink that has completed no write for longer than
// delivery.stall_threshold while batches wait for it: the replica cannot
// make progress, and its readiness says so (liveness does not: restarting
// would not bring the store back).
func (p *Pipeline) stalled(now time.Time) error {
	limit := p.cfg.Delivery.StallThreshold.D()
	n := p.waiting.Load()
	if limit <= 0 || n == 0 {
		return nil
	}
	if idle := now.Sub(time.Unix(0, p.lastWrite.Load())); idle > limit {
		return fmt.Errorf("no sink write completed for %s while %d batches wait (over delivery.stall_threshold %s)", idle.Round(time.Second), n, limit)
	}
	return nil
}

func (p *Pipeline) start(ctx context.Context) error {
	try := func(label string, c any) error {
		if s, ok := c.(Starter); ok {
			if err := s.Start(ctx); err != nil {
				return fmt.Errorf("start %s: %w", label, err)
			}
		}
		return nil
	}
	if p.deadLetter != nil {
		if err := try(p.deadLetter.label, p.deadLetter.c); err != nil {
			return err
		}
	}
	for _, s := range p.sinks {
		if err := try(s.label, s.c); err != nil {
			return err
		}
	}
	for _, t := range p.transforms {
		if err := try(t.label, t.c); err != nil {
			return err
		}
	}
	return try(p.source.label, p.source.c)
}

// closeAll closes in data-flow order, so nothing is written after its sink
// closed: source first, then transforms, then sinks, the dead letter last.
func (p *Pipeline) closeAll(ctx context.Context) error {
	var errs []error
	closeOne := func(label string, c any) {
		if cl, ok := c.(Closer); ok && cl != nil {
			if err := cl.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", label, err))
			}
		}
	}
	if p.source.c != nil {
		closeOne(p.source.label, p.source.c)
	}
	for _, t := range p.transforms {
		closeOne(t.label, t.c)
	}
	for _, s := range p.sinks {
		closeOne(s.label, s.c)
	}
	if p.deadLetter != nil {
		closeOne(p.deadLetter.label, p.deadLetter.c)
	}
	return errors.Join(errs...)
}
