package pipeline_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
)

func TestFoldEventErrors(t *testing.T) {
	outage := errors.New("connection refused")
	poison := pipeline.Permanent(errors.New("mapping conflict"))
	other := errors.New("throttled")
	tests := []struct {
		name      string
		errs      []error
		whole     error // the error returned as is, when not a BatchError
		failed    []int // the indexes a BatchError names
		permanent []int // of those, the permanent ones
	}{
		{name: "empty", errs: nil},
		{name: "every event stored", errs: []error{nil, nil}},
		{name: "one outage for all", errs: []error{outage, outage, outage}, whole: outage},
		{name: "one permanent error for all is per event", errs: []error{poison, poison}, failed: []int{0, 1}, permanent: []int{0, 1}},
		{name: "some failed", errs: []error{nil, outage, nil}, failed: []int{1}},
		{name: "different errors", errs: []error{outage, other}, failed: []int{0, 1}},
		{name: "mixed permanent and retryable", errs: []error{poison, outage, nil}, failed: []int{0, 1}, permanent: []int{0}},
		{name: "equal text, different values", errs: []error{errors.New("x"), errors.New("x")}, failed: []int{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := pipeline.FoldEventErrors(tc.errs)
			var be *pipeline.BatchError
			switch {
			case tc.failed == nil && tc.whole == nil:
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
			case tc.whole != nil:
				if err != tc.whole {
					t.Fatalf("got %v, want the shared error itself", err)
				}
			case !errors.As(err, &be):
				t.Fatalf("got %T %v, want a *BatchError", err, err)
			default:
				var failed, permanent []int
				for _, f := range be.Failures {
					failed = append(failed, f.Index)
					if pipeline.IsPermanent(f.Err) {
						permanent = append(permanent, f.Index)
					}
				}
				if !slices.Equal(failed, tc.failed) || !slices.Equal(permanent, tc.permanent) {
					t.Fatalf("BatchError names %v (permanent %v), want %v (permanent %v)", failed, permanent, tc.failed, tc.permanent)
				}
			}
		})
	}
}
