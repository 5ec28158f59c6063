package pipelinetest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

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
	// Pipeline is the running pipeline (for Ready, Stats and the like).
	Pipeline *pipeline.Pipeline
	cancel   context.CancelFunc
	done     chan error
	once     sync.Once
	err      error
}

// Start builds doc as Build does and runs it in the background until
// Stop, Wait or the end of t, whichever comes first (t's cleanup stops
// it and reports nothing: call Stop to see what Run returned).
func Start(t testing.TB, file, doc string, reg *pipeline.Registry, opts ...pipeline.Option) *Run {
	t.Helper()
	p := Build(t, file, doc, reg, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Run{Pipeline: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { _ = r.Stop(t) })
	return r
}

// Stop cancels the run (a graceful shutdown) and returns what Run
// returned. It fails t with a goroutine dump if the run has not ended
// within testwait.Bound(). Later calls return the first one's answer.
func (r *Run) Stop(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		r.err = r.wait(t, "the pipeline's stop")
	})
	return r.err
}

// Wait waits for the run to end on its own (a finite source's io.EOF, or
// a failure) and returns what Run returned. It fails t with a goroutine
// dump if the run has not ended within testwait.Bound().
func (r *Run) Wait(t testing.TB) error {
	t.Helper()
	r.once.Do(func() {
		r.err = r.wait(t, "the end of the pipeline run")
		r.cancel()
	})
	return r.err
}

func (r *Run) wait(t testing.TB, what string) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(testwait.Bound()):
		testwait.Fail(t, what, nil)
		return nil
	}
}
