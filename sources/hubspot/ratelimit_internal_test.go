package hubspot

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestRateLimitHeadersOnEveryAnswer: Retry-After, then HubSpot's
// X-HubSpot-RateLimit-Remaining / -Interval-Milliseconds, set the pause on
// a 429 as on a 200, in the shapes HubSpot documents.
func TestRateLimitHeadersOnEveryAnswer(t *testing.T) {
	const results = `{"total":1,"results":[{"id":"51","properties":{"email":"ada@acme-corp.com","lastmodifieddate":"2026-11-19T11:18:52.123Z"},"createdAt":"2026-11-01T08:00:00Z","updatedAt":"2026-11-19T11:18:52.123Z","archived":false}]}`
	const limited = `{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"c033cdaa-2c40-4a64-ae48-b4cec88dad24","policyName":"TEN_SECONDLY_ROLLING"}`
	budget := map[string]string{"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
		"X-HubSpot-RateLimit-Daily": "1000000", "X-HubSpot-RateLimit-Daily-Remaining": "999000"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range m {
			out[a] = b
		}
		out[k] = v
		return out
	}
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		pause  time.Duration // a page's Pause, or the RetryAfterError's Wait
		retry  bool          // a RetryAfterError
	}{
		{"429 with the budget spent waits the interval", 429, budget, limited, 10 * time.Second, true},
		{"429 with Retry-After waits it", 429, with(budget, "Retry-After", "3"), limited, 3 * time.Second, true},
		{"429 with no header waits a second", 429, nil, limited, time.Second, true},
		{"200 with the budget spent pauses the interval", 200, budget, results, 10 * time.Second, false},
		{"200 with budget left does not pause", 200, with(budget, "X-HubSpot-RateLimit-Remaining", "12"), results, 0, false},
		{"502 with the budget spent waits the interval", 502, budget, `{"status":"error"}`, 10 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pollertest.Answer(t, tc.status, with(tc.hdr, "Content-Type", "application/json;charset=utf-8"), tc.body)
			cl := newClient(Config{BaseURL: srv.URL, Token: "pat-na1-x", PageSize: 10, Objects: []Object{{Name: "contacts"}}}, pipelinetest.BuildContext().Logger)
			page, err := cl.Fetch(t.Context(), poller.Query{Object: "contacts"})
			if tc.retry {
				ra, ok := errors.AsType[*poller.RetryAfterError](err)
				if !ok || ra.Wait != tc.pause || pipeline.IsPermanent(err) {
					t.Fatalf("err %v, want a retry after %s", err, tc.pause)
				}
				return
			}
			if err != nil || page.Pause != tc.pause || len(page.Records) != 1 {
				t.Fatalf("page pause %s, %d records, err %v; want pause %s", page.Pause, len(page.Records), err, tc.pause)
			}
		})
	}
}
