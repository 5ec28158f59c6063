package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sluicehq/sluice/pipeline"
)

// SourceName is the source the replay puts in place of the pipeline
// file's own: its transforms, sinks and dead_letter run as configured.
const SourceName = "sluice-replay"

// throughPipeline runs the pipeline file with the dead letters as its
// source. Events that fail again go to its dead_letter with their new
// reason; the run ends when the snapshot is read and everything settled.
func (r *replay) throughPipeline(ctx context.Context) error {
	cfg := *r.o.Pipeline
	src := &source{r: r}
	pipeline.RegisterSource(r.o.Registry, SourceName, "dead letters being replayed", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) {
		return src, nil
	})
	cfg.Source = pipeline.SourceSpec{Spec: pipeline.Spec{Name: SourceName, Config: &struct{}{}, Path: "source", Line: cfg.Source.Line}}
	p, err := pipeline.Build(ctx, &cfg, r.o.Registry, pipeline.WithLogger(r.o.Log))
	if err != nil {
		return err
	}
	runErr := p.Run(ctx)
	st := p.Stats()
	r.mu.Lock()
	r.stats = &st
	r.mu.Unlock()
	if err := src.wait(); err != nil {
		return errors.Join(runErr, err)
	}
	if n := r.notReplayed.Load(); n > 0 && runErr == nil {
		runErr = fmt.Errorf("replay: %d dead letters were read but not settled (the pipeline stopped first); run the replay again", n)
	}
	return runErr
}

// source is the pipeline.Source of a replay: the matched dead letters as
// their original events, io.EOF at the snapshot's end.
type source struct {
	r       *replay
	mu      sync.Mutex
	readErr error
}

func (s *source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	recs, err := s.r.next(ctx)
	if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
		// A broken read (unreadable line, failing filter) is not worth
		// retrying: end the source, and report it after the run.
		s.mu.Lock()
		s.readErr = err
		s.mu.Unlock()
		err = io.EOF
	}
	if len(recs) == 0 {
		return nil, nil, err
	}
	events := make([]*pipeline.Event, len(recs))
	for i := range recs {
		events[i] = recs[i].Event()
	}
	n := int64(len(events))
	ack := func(aerr error) {
		if aerr != nil {
			s.r.notReplayed.Add(n)
			return
		}
		s.r.replayed.Add(n)
	}
	if errors.Is(err, io.EOF) {
		err = nil // hand over this batch; the next Read returns io.EOF
	}
	return events, ack, err
}

func (s *source) wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readErr
}

func (s *source) Close(context.Context) error { return nil }
