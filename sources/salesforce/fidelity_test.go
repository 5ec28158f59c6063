package salesforce_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/sources/salesforce"
)

// fakeQuery serves one query answer after a client-credentials token.
func fakeQuery(t *testing.T, status int, hdr map[string]string, body string) salesforce.Config {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"00Dxx0000001gPL!AR8AQJXg","token_type":"Bearer","instance_url":"x"}`))
	})
	mux.HandleFunc("GET /services/data/v60.0/query", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return fetchConfig(srv.URL)
}

// fetchConfig is the config of the FetchOnce tests: Contact on the
// stand-in at url, client credentials.
func fetchConfig(url string) salesforce.Config {
	cfg := salesforce.Config{}
	cfg.SetDefaults()
	cfg.InstanceURL = url
	cfg.Objects = []salesforce.Object{{Name: "Contact"}}
	cfg.Auth.ClientID, cfg.Auth.ClientSecret = "id", "secret"
	return cfg
}

// TestOccurredAtIsLastModifiedDate: a record's business time is
// LastModifiedDate (here two days before SystemModstamp, as a background
// process touched it); the stamp (the cursor) stays SystemModstamp. An
// object without LastModifiedDate has only the stamp.
func TestOccurredAtIsLastModifiedDate(t *testing.T) {
	const body = `{"totalSize":2,"done":true,"records":[` +
		`{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003Hu0000EVxF30IQF"},"Id":"003Hu0000EVxF30IQF","AccountId":"001Hu0000XWeaNWIQZ","Email":"ada@acme-corp.com","CreatedDate":"2026-11-01T08:00:00.000+0000","LastModifiedDate":"2026-11-17T09:41:05.000+0000","SystemModstamp":"2026-11-19T11:18:52.000+0000","IsDeleted":false},` +
		`{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003Hu0000EVxF31IQF"},"Id":"003Hu0000EVxF31IQF","SystemModstamp":"2026-11-19T11:18:53.000+0000"}]}`
	page, err := salesforce.FetchOnce(t.Context(), fakeQuery(t, 200, nil, body), poller.Query{Object: "Contact"})
	if err != nil || len(page.Records) != 2 {
		t.Fatalf("%d records, err %v", len(page.Records), err)
	}
	r := page.Records[0]
	if got := r.OccurredAt.Format(time.RFC3339); got != "2026-11-17T09:41:05Z" {
		t.Errorf("OccurredAt %s, want LastModifiedDate 2026-11-17T09:41:05Z", got)
	}
	if got := r.Stamp.Format(time.RFC3339); got != "2026-11-19T11:18:52Z" {
		t.Errorf("Stamp %s, want SystemModstamp 2026-11-19T11:18:52Z", got)
	}
	if !page.Records[1].OccurredAt.IsZero() {
		t.Errorf("a record without LastModifiedDate has OccurredAt %v", page.Records[1].OccurredAt)
	}
}

// TestLimitSignalsOnEveryAnswer: Retry-After, then Sforce-Limit-Info above
// max_api_usage (api_usage_pause, 5 m by default), set the wait on failed
// answers as on 200s.
func TestLimitSignalsOnEveryAnswer(t *testing.T) {
	const empty = `{"totalSize":0,"done":true,"records":[]}`
	const limit = `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`
	const unavailable = `[{"message":"unavailable","errorCode":"SERVER_UNAVAILABLE"}]`
	high := map[string]string{"Sforce-Limit-Info": "api-usage=14900/15000"}
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		wait   time.Duration
		retry  bool
	}{
		{"200 over max_api_usage pauses", 200, high, empty, 5 * time.Minute, false},
		{"200 with Retry-After pauses it", 200, map[string]string{"Retry-After": "20", "Sforce-Limit-Info": "api-usage=14900/15000"}, empty, 20 * time.Second, false},
		{"503 over max_api_usage waits the pause", 503, high, unavailable, 5 * time.Minute, true},
		{"403 REQUEST_LIMIT_EXCEEDED with Retry-After", 403, map[string]string{"Retry-After": "60"}, limit, time.Minute, true},
		{"403 REQUEST_LIMIT_EXCEEDED without", 403, nil, limit, 5 * time.Minute, true},
		{"429 with Retry-After", 429, map[string]string{"Retry-After": "7"}, `[]`, 7 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := salesforce.FetchOnce(t.Context(), fakeQuery(t, tc.status, tc.hdr, tc.body), poller.Query{Object: "Contact"})
			if tc.retry {
				ra, ok := errors.AsType[*poller.RetryAfterError](err)
				if !ok || ra.Wait != tc.wait {
					t.Fatalf("err %v, want a retry after %s", err, tc.wait)
				}
				return
			}
			if err != nil || page.Pause != tc.wait {
				t.Fatalf("pause %s err %v, want %s", page.Pause, err, tc.wait)
			}
		})
	}
}
