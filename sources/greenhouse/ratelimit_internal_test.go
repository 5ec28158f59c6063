package greenhouse

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
)

// TestRateLimitHeaders: Harvest's X-RateLimit-Remaining: 0 pauses until
// X-RateLimit-Reset (10 s without it); Retry-After comes first; a 429
// waits the same, in the shapes Harvest documents.
func TestRateLimitHeaders(t *testing.T) {
	const candidates = `[{"id":4829202002,"first_name":"Ada","last_name":"Lovelace","created_at":"2026-11-01T08:00:00.000Z","updated_at":"2026-11-19T11:18:52.000Z","email_addresses":[{"value":"ada@acme-corp.com","type":"work"}]}]`
	resetIn := func(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
	for _, tc := range []struct {
		name     string
		status   int
		hdr      map[string]string
		min, max time.Duration // the pause (Unix-second resets are read against now: a range)
		retry    bool
	}{
		{"budget left", 200, map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49"}, 0, 0, false},
		{"spent, reset as Unix seconds", 200, map[string]string{"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": resetIn(30 * time.Second)}, 20 * time.Second, 30 * time.Second, false},
		{"spent, reset in seconds", 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "6"}, 6 * time.Second, 6 * time.Second, false},
		{"spent, no reset", 200, map[string]string{"X-RateLimit-Remaining": "0"}, 10 * time.Second, 10 * time.Second, false},
		{"429 waits for the reset", 429, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}, 4 * time.Second, 4 * time.Second, true},
		{"429 Retry-After first", 429, map[string]string{"Retry-After": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9"}, 2 * time.Second, 2 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"message":"Rate limit exceeded"}`
			if tc.status == 200 {
				body = candidates
			}
			srv := pollertest.Answer(t, tc.status, tc.hdr, body)
			base, _ := url.Parse(srv.URL + "/v1")
			cl := &client{base: base, key: "k", perPage: 10, http: srv.Client()}
			page, err := cl.Fetch(t.Context(), poller.Query{Object: "candidates"})
			got := page.Pause
			if tc.retry {
				ra, ok := errors.AsType[*poller.RetryAfterError](err)
				if !ok {
					t.Fatalf("err %v, want a RetryAfterError", err)
				}
				got = ra.Wait
			} else if err != nil || len(page.Records) != 1 {
				t.Fatalf("%d records, err %v", len(page.Records), err)
			}
			if got < tc.min || got > tc.max {
				t.Fatalf("pause %s, want %s to %s", got, tc.min, tc.max)
			}
		})
	}
}
