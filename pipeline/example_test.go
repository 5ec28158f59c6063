package pipeline_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/pipeline"
)

// A sink reports the events it could not store with a *BatchError naming
// their positions; the others count as stored. A failure the same input
// would repeat is wrapped with Permanent: the runner dead-letters that
// event instead of retrying it.
func ExampleBatchError() {
	batch := []*pipeline.Event{
		{ID: "a", Body: []byte(`{"n":1}`)},
		{ID: "b", Body: []byte(`[1]`)},
		{ID: "c", Body: []byte(`{"n":3}`)},
	}
	be := pipeline.NewBatchError()
	for i, ev := range batch {
		if ev.Body[0] != '{' {
			be.Fail(i, pipeline.Permanent(fmt.Errorf("event %s: body is not an object", ev.ID)))
		}
	}
	err := be.Err() // nil when nothing failed
	var got *pipeline.BatchError
	if errors.As(err, &got) {
		for _, f := range got.Failures {
			fmt.Println(f.Index, pipeline.IsPermanent(f.Err), f.Err)
		}
	}
	// Output: 1 true event b: body is not an object
}

// FoldEventErrors turns one outcome per event into Write's error: a
// shared retryable error (an outage) fails the whole call; anything else
// is reported per event.
func ExampleFoldEventErrors() {
	outage := errors.New("connection refused")
	fmt.Println(pipeline.FoldEventErrors([]error{outage, outage}) == outage)

	poison := pipeline.Permanent(errors.New("mapping conflict"))
	err := pipeline.FoldEventErrors([]error{nil, poison})
	var be *pipeline.BatchError
	fmt.Println(errors.As(err, &be), be.Failures[0].Index)
	// Output:
	// true
	// true 1
}

// throttled is a component's error that names its class for the retries
// metric.
type throttled struct{ after string }

func (e *throttled) Error() string      { return "throttled, retry after " + e.after }
func (e *throttled) ErrorClass() string { return "throttled" }

var _ pipeline.ErrorClassifier = (*throttled)(nil)

func ExampleErrorClassifier() {
	err := fmt.Errorf("put records: %w", &throttled{after: "1s"})
	fmt.Println(pipeline.ErrorClass(err))
	fmt.Println(pipeline.ErrorClass(context.DeadlineExceeded))
	// Output:
	// throttled
	// timeout
}

// A component whose readiness depends on a server keeps a Readiness and
// reports it from Ready; /readyz answers 503 with the reason while it is
// set.
func ExampleReadiness() {
	var r pipeline.Readiness
	r.Set(errors.New("brokers not reached yet")) // in the constructor
	fmt.Println(r.Ready())
	if prev := r.Set(nil); prev != nil { // a probe succeeded
		fmt.Println("ready again after:", prev)
	}
	fmt.Println(r.Ready())
	// Output:
	// brokers not reached yet
	// ready again after: brokers not reached yet
	// <nil>
}
