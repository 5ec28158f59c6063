package pipelinetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// Build loads doc as the pipeline file named file (the name config errors
// give) with reg's components and no environment variables, and builds
// it with its logs discarded. opts come after that default, so
// pipeline.WithLogger in opts replaces it. A config or build error fails
// t; a test that expects one calls pipeline.Load or pipeline.Build itself.
func Build(t testing.TB, file, doc string, reg *pipeline.Registry, opts ...pipeline.Option) *pipeline.Pipeline {
	t.Helper()
	cfg, err := pipeline.Load(file, []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]pipeline.Option{pipeline.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	p, err := pipeline.Build(context.Background(), cfg, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RunToEnd builds doc as Build does and runs it until it ends on its own
// (a finite source's io.EOF, or a failure), returning what Run returned.
// Its context ends only at testwait.Bound(), which only a hang reaches.
func RunToEnd(t testing.TB, file, doc string, reg *pipeline.Registry, opts ...pipeline.Option) error {
	t.Helper()
	p := Build(t, file, doc, reg, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	return p.Run(ctx)
}

// Run is a pipeline running in the background, started by Start.
type Run struct {
	// Pipeline is the running pipeline (for Readiness, Stats and the like).
	Pipeline *pipeline.Pipeline
	cancel   context.CancelFunc
	ended    chan struct{} // closed once Run returned, after err is set
	err      error
}

// Start builds doc as Build does and runs it in the background until
// Stop, Wait or the end of t, whichever comes first (t's cleanup stops
// it and reports nothing: call Stop to see what Run returned).
func Start(t testing.TB, file, doc string, reg *pipeline.Registry, opts ...pipeline.Option) *Run {
	t.Helper()
	p := Build(t, file, doc, reg, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Pipeline: p, cancel: cancel, ended: make(chan struct{})}
	go func() {
		r.err = p.Run(ctx)
		close(r.ended)
	}()
	t.Cleanup(func() { _ = r.Stop(t) })
	return r
}

// Done is closed once the run has ended (Stop or Wait then return at
// once): a test that expects the run to go on checks it is still open.
func (r *Run) Done() <-chan struct{} { return r.ended }

// Stop cancels the run (a graceful shutdown) and returns what Run
// returned. It fails t with a goroutine dump if the run has not ended
// within testwait.Bound(). Calling it again returns the same answer.
func (r *Run) Stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t, "stop of the pipeline run")
}

// Wait waits for the run to end on its own (a finite source's io.EOF, or
// a failure) and returns what Run returned. It fails t with a goroutine
// dump if the run has not ended within testwait.Bound().
func (r *Run) Wait(t testing.TB) error {
	t.Helper()
	err := r.wait(t, "end of the pipeline run")
	r.cancel()
	return err
}

func (r *Run) wait(t testing.TB, what string) error {
	t.Helper()
	testwait.Recv(t, r.ended, what, nil)
	return r.err
}
