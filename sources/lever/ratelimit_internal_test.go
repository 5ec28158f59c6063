package lever

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
)

// TestRateLimitAnswers: Lever's 429 (past its request rate) and 503
// (overloaded) wait Retry-After when given; a 429 without it waits 10 s,
// a 503 without it backs off; a 200 with Retry-After pauses the next
// request. The exact updatedAt milliseconds are kept.
func TestRateLimitAnswers(t *testing.T) {
	const opps = `{"data":[{"id":"ec21f701-38dc-43e3-8d36-d699ea35c1c5","name":"Ada Lovelace","contact":"c1","emails":["ada@acme-corp.com"],"createdAt":1763550000000,"updatedAt":1772445607318}],"hasNext":false}`
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		wait   time.Duration
		retry  bool // a RetryAfterError; else a page (200) or a plain retryable error
	}{
		{"429 with Retry-After", 429, map[string]string{"Retry-After": "5"}, 5 * time.Second, true},
		{"429 without", 429, nil, 10 * time.Second, true},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "30"}, 30 * time.Second, true},
		{"503 without backs off", 503, nil, 0, false},
		{"200 with Retry-After pauses", 200, map[string]string{"Retry-After": "1"}, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"code":"TooManyRequests","message":"rate limit exceeded"}`
			if tc.status == 200 {
				body = opps
			}
			srv := pollertest.Answer(t, tc.status, tc.hdr, body)
			cl := &client{base: srv.URL + "/v1", key: "k", limit: 10, http: srv.Client()}
			page, err := cl.Fetch(t.Context(), poller.Query{Object: "opportunities"})
			ra, isRA := errors.AsType[*poller.RetryAfterError](err)
			switch {
			case tc.retry:
				if !isRA || ra.Wait != tc.wait {
					t.Fatalf("err %v, want a retry after %s", err, tc.wait)
				}
			case tc.status == 200:
				if err != nil || page.Pause != tc.wait || len(page.Records) != 1 {
					t.Fatalf("pause %s, %d records, err %v", page.Pause, len(page.Records), err)
				}
				if got := page.Records[0].Stamp.Format(time.RFC3339Nano); got != "2026-03-02T10:00:07.318Z" {
					t.Fatalf("stamp %s", got)
				}
			default:
				if err == nil || isRA || pipeline.IsPermanent(err) {
					t.Fatalf("err %v, want a retryable error without a wait", err)
				}
			}
		})
	}
}
