package pipelinetest_test

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// startable is a source that records Start.
type startable struct {
	*pipelinetest.Source
	started bool
}

func (s *startable) Start(context.Context) error { s.started = true; return nil }

var _ pipeline.Starter = (*startable)(nil)

// TestStartSource: a Starter is started at once, and every source is
// closed when the test that started it ends, not before.
func TestStartSource(t *testing.T) {
	for _, tc := range []struct {
		name    string
		starter bool
	}{{"starter", true}, {"plain source", false}} {
		var s *startable
		var src pipeline.Source
		plain := pipelinetest.NewSource()
		if tc.starter {
			s = &startable{Source: plain}
			src = s
		} else {
			src = plain
		}
		t.Run(tc.name, func(t *testing.T) {
			pipelinetest.StartSource(t, src)
			if tc.starter && !s.started {
				t.Error("not started")
			}
			if plain.Closed() {
				t.Error("closed before the test ended")
			}
		})
		if !plain.Closed() {
			t.Errorf("%s: not closed when its test ended", tc.name)
		}
	}
}
