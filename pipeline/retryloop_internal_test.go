package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRetryEvents pins the shared loop's two ways with errors: a
// transform's given-up events carry the attempt's last retryable error, a
// sink's each its own; permanent failures settle at once; the retryable
// are retried in the order reported (transforms) or with their key's
// successors (sinks).
func TestRetryEvents(t *testing.T) {
	errA, errB := errors.New("a down"), errors.New("b down")
	perm := Permanent(errors.New("bad"))
	batchErr := func(n int) error { // event 0 permanent, 2 and 1 retryable (A, B)
		be := NewBatchError()
		be.Fail(0, perm)
		if n > 2 {
			be.Fail(2, errA)
		}
		be.Fail(1, errB)
		return be
	}
	for _, tc := range []struct {
		name      string
		sink      bool
		wantWhy   map[string]string // event id → reason substring
		wantTries []string          // ids per attempt
	}{
		{"transform", false, map[string]string{"e0": "bad", "e1": "giving up after 2 attempts: b down", "e2": "giving up after 2 attempts: b down"}, []string{"e0 e1 e2", "e2 e1"}},
		{"sink", true, map[string]string{"e0": "bad", "e1": "giving up after 2 attempts: b down", "e2": "giving up after 2 attempts: a down"}, []string{"e0 e1 e2", "e1 e2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMetrics(prometheus.NewRegistry(), "p")
			if err != nil {
				t.Fatal(err)
			}
			p := &Pipeline{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				cfg: &Config{Retry: RetryConfig{InitialInterval: Duration(time.Millisecond), MaxInterval: Duration(time.Millisecond), MaxAttempts: 2}}}
			events := []*Event{{ID: "e0", Key: []byte("k0")}, {ID: "e1", Key: []byte("k1")}, {ID: "e2", Key: []byte("k2")}}
			var tries []string
			next := eventsAt
			if tc.sink {
				next = withKeySuccessors
			}
			failures, err := p.retryEvents(context.Background(), &stageRetry{
				label: "x", m: m.stage("x"), retryMsg: "retrying", sink: tc.sink, next: next,
				try: func(pending []*Event) error {
					var ids []string
					for _, ev := range pending {
						ids = append(ids, ev.ID)
					}
					tries = append(tries, strings.Join(ids, " "))
					if len(pending) == 3 {
						return batchErr(3)
					}
					be := NewBatchError() // the retry: both still down, each its own way
					for i, ev := range pending {
						if ev.ID == "e2" {
							be.Fail(i, errA)
						} else {
							be.Fail(i, errB)
						}
					}
					return be
				},
			}, events)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(tries, "|") != strings.Join(tc.wantTries, "|") {
				t.Errorf("attempts %q, want %q", tries, tc.wantTries)
			}
			if len(failures) != len(tc.wantWhy) {
				t.Fatalf("%d failures, want %d", len(failures), len(tc.wantWhy))
			}
			for _, f := range failures {
				if want := tc.wantWhy[f.event.ID]; !strings.Contains(f.err.Error(), want) {
					t.Errorf("%s failed with %q, want %q", f.event.ID, f.err, want)
				}
			}
		})
	}
}

// TestSinkRetryLeavesOutWhatFailedForGood: a sink retry resends a failed
// event's later events of the same key, but not one that failed for good
// in the same attempt. It used to be resent with its key's earlier
// retryable event, failed for good again and was dead-lettered twice
// (seen once in the Elasticsearch runner test on a loaded machine: the
// 400-rejected document dead-lettered at attempts 14 and 15).
func TestSinkRetryLeavesOutWhatFailedForGood(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry(), "p")
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg: &Config{Retry: RetryConfig{InitialInterval: Duration(time.Millisecond), MaxInterval: Duration(time.Millisecond), MaxAttempts: 5}}}
	// e0 and e2 share key k with e1 between them: e0 is throttled once,
	// e1 is rejected for good, e2 (written) must follow e0 again.
	events := []*Event{{ID: "e0", Key: []byte("k")}, {ID: "e1", Key: []byte("k")}, {ID: "e2", Key: []byte("k")}}
	var tries []string
	failures, err := p.retryEvents(context.Background(), &stageRetry{
		label: "x", m: m.stage("x"), retryMsg: "retrying", sink: true, next: withKeySuccessors,
		try: func(pending []*Event) error {
			var ids []string
			be := NewBatchError()
			for i, ev := range pending {
				ids = append(ids, ev.ID)
				switch {
				case ev.ID == "e1":
					be.Fail(i, Permanent(errors.New("rejected")))
				case ev.ID == "e0" && len(tries) == 0:
					be.Fail(i, errors.New("throttled"))
				}
			}
			tries = append(tries, strings.Join(ids, " "))
			if len(be.Failures) == 0 {
				return nil
			}
			return be
		},
	}, events)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tries, "|"), "e0 e1 e2|e0 e2"; got != want {
		t.Errorf("attempts %q, want %q", got, want)
	}
	if len(failures) != 1 || failures[0].event.ID != "e1" {
		var ids []string
		for _, f := range failures {
			ids = append(ids, f.event.ID)
		}
		t.Errorf("failures %q, want e1 once", ids)
	}
}
