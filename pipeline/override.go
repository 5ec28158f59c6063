package pipeline

// WithOverride lets fn stand in for components: for each spec of the file
// (source, transforms, sinks, dead letter, in that order) fn may return the
// component to use instead of building the spec's; it keeps the spec's label
// in metrics and dead letters. `sluice test` replaces the source with the
// test's input events and the sinks with captures this way. The component
// must implement the kind's interface (Source, Transform or Sink).
func WithOverride(fn func(kind Kind, s *Spec) (component any, ok bool)) Option {
	return func(o *buildOptions) { o.override = fn }
}
