package pipeline

import (
	"fmt"
	"log/slog"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what role a component plays.
type Kind string

// The component kinds a pipeline file names.
const (
	KindSource    Kind = "source"
	KindTransform Kind = "transform"
	KindSink      Kind = "sink"
)

// BuildContext is what a component gets when it is built from its config.
// Every component has one constructor of the same shape,
//
//	func New(bc pipeline.BuildContext, c Config) (*T, error)
//
// (options a component has beyond its YAML come after c as functional
// options). Logger and Metrics are never nil in a BuildContext made by
// Build or NewBuildContext, so a component uses them without checks; code
// that builds a component itself (tests, the bench, the CLI's helpers)
// makes its BuildContext with NewBuildContext.
type BuildContext struct {
	// Pipeline is the pipeline's name, for labels and stamps.
	Pipeline string
	// Component is the component's label in metrics and logs, e.g.
	// "sinks[0].mongodb".
	Component string
	// Logger is scoped to the pipeline and component.
	Logger *slog.Logger
	// Metrics registers the component's own series (sluice_ prefixed).
	Metrics prometheus.Registerer
	// Lanes is how many batches the pipeline processes at once
	// (delivery.lanes): a sink's Write may run that many times at once,
	// so a sink that keeps per-Write buffers keeps that many. 0: unknown.
	Lanes int
}

// NewBuildContext returns a BuildContext for the component labelled
// component in pipeline pipelineName. A nil log discards what the component
// logs; a nil reg registers its series in a private registry nobody
// scrapes. This is the one place those defaults live.
func NewBuildContext(pipelineName, component string, log *slog.Logger, reg prometheus.Registerer) BuildContext {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return BuildContext{Pipeline: pipelineName, Component: component, Logger: log, Metrics: reg}
}

type registration struct {
	kind      Kind
	name      string
	summary   string
	newConfig func() any
	build     func(bc BuildContext, cfg any) (any, error)
}

// Registry maps component names to their config types and constructors.
// The CLI fills one registry with every component; tests fill their own.
type Registry struct {
	byKind map[Kind]map[string]*registration
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byKind: map[Kind]map[string]*registration{
		KindSource: {}, KindTransform: {}, KindSink: {},
	}}
}

func register[C any, T any](r *Registry, kind Kind, name, summary string, build func(BuildContext, *C) (T, error)) {
	if _, dup := r.byKind[kind][name]; dup {
		panic(fmt.Sprintf("pipeline: %s %q registered twice", kind, name))
	}
	r.byKind[kind][name] = &registration{
		kind: kind, name: name, summary: summary,
		newConfig: func() any {
			c := new(C)
			if d, ok := any(c).(Defaulter); ok {
				d.SetDefaults()
			}
			return c
		},
		build: func(bc BuildContext, cfg any) (any, error) { return build(bc, cfg.(*C)) },
	}
}

// RegisterSource adds a source named name whose YAML config decodes into C.
func RegisterSource[C any](r *Registry, name, summary string, build func(BuildContext, *C) (Source, error)) {
	register(r, KindSource, name, summary, build)
}

// RegisterTransform adds a transform named name whose YAML config decodes into C.
func RegisterTransform[C any](r *Registry, name, summary string, build func(BuildContext, *C) (Transform, error)) {
	register(r, KindTransform, name, summary, build)
}

// RegisterSink adds a sink named name whose YAML config decodes into C.
func RegisterSink[C any](r *Registry, name, summary string, build func(BuildContext, *C) (Sink, error)) {
	register(r, KindSink, name, summary, build)
}

// Names lists the registered names of a kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	names := make([]string, 0, len(r.byKind[kind]))
	for n := range r.byKind[kind] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Summary returns the one-line description a component registered with.
func (r *Registry) Summary(kind Kind, name string) string {
	if reg, ok := r.byKind[kind][name]; ok {
		return reg.summary
	}
	return ""
}

func (r *Registry) lookup(kind Kind, name string) (*registration, bool) {
	reg, ok := r.byKind[kind][name]
	return reg, ok
}
