package pipeline

import (
	"errors"
	"fmt"
	"strings"
)

// Permanent marks err as not worth retrying: the same input will fail the
// same way (a malformed payload, a mapping conflict, a document too large).
// The runner routes events failed permanently to the dead-letter sink.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent. Every other error is retryable: an unknown failure is more
// likely an outage than a poison event, and retrying loses nothing.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// FoldEventErrors turns the per-event outcomes of one call (errs[i] is
// event i's error, nil when it succeeded) into the error Write or Apply
// returns:
//
//   - nil when every event succeeded (or errs is empty);
//   - the shared error itself when every event failed with the same
//     retryable error value: an outage, not the events' fault, so the
//     runner retries the whole call and logs one error;
//   - otherwise a *BatchError naming each failed event. A permanent error
//     is always reported per event, even when every event shares it: it
//     says something about the events, which go to the dead letter one by
//     one with it.
func FoldEventErrors(errs []error) error {
	be := NewBatchError()
	var first error
	same := true
	for i, err := range errs {
		if err == nil {
			same = false
			continue
		}
		if first == nil {
			first = err
		} else if err != first {
			same = false
		}
		be.Fail(i, err)
	}
	if same && first != nil && !IsPermanent(first) {
		return first
	}
	return be.Err()
}

// EventError is the failure of one event of a batch.
type EventError struct {
	// Index is the event's position in the batch the component was given.
	Index int
	Err   error
}

// BatchError reports that some events of a batch failed and the others
// succeeded. Build one with NewBatchError and Fail.
type BatchError struct {
	Failures []EventError
}

// NewBatchError returns an empty BatchError to Fail events on.
func NewBatchError() *BatchError { return &BatchError{} }

// Fail records that the event at index failed with err.
func (b *BatchError) Fail(index int, err error) *BatchError {
	b.Failures = append(b.Failures, EventError{Index: index, Err: err})
	return b
}

// Len is the number of failed events.
func (b *BatchError) Len() int { return len(b.Failures) }

// Err returns b as an error, or nil when nothing failed, so a component can
// end with `return out, be.Err()`.
func (b *BatchError) Err() error {
	if b == nil || len(b.Failures) == 0 {
		return nil
	}
	return b
}

func (b *BatchError) Error() string {
	if len(b.Failures) == 0 {
		return "no events failed"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d events failed", len(b.Failures))
	for i, f := range b.Failures {
		if i == 3 {
			fmt.Fprintf(&sb, "; and %d more", len(b.Failures)-3)
			break
		}
		fmt.Fprintf(&sb, "; [%d]: %v", f.Index, f.Err)
	}
	return sb.String()
}
