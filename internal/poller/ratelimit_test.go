package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// fakeClock is the poller's clock and sleeper in tests: Sleep records the
// pause asked for and moves the clock past it at once.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	naps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.naps = append(c.naps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.naps...)
}

// TestRateLimitPausesAreRequested: a RetryAfterError and a page's Pause
// each make the poller wait exactly what was asked before its next request.
func TestRateLimitPausesAreRequested(t *testing.T) {
	limited := func(poller.Query) (poller.Page, error) {
		return poller.Page{}, &poller.RetryAfterError{Wait: 10 * time.Second, Err: errors.New("429")}
	}
	spent := func(q poller.Query) (poller.Page, error) {
		p, err := page("p2", 1)(q)
		p.Pause = 7 * time.Second
		return p, err
	}
	cl := &pages{steps: []func(poller.Query) (poller.Page, error){limited, spent, page("", 2)}}
	clock := &fakeClock{now: t0}
	s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, Sorted: true, Interval: time.Hour, CheckpointInterval: time.Hour,
		StateKey: "k", Store: &memStore{m: map[string]poller.Cursor{}}, Client: cl, Now: clock.Now, Sleep: clock.Sleep, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	rs := readN(t, s, 2)
	if fmt.Sprint(rs[0].ids, rs[1].ids) != "[r1] [r2]" {
		t.Fatalf("read %v %v", rs[0].ids, rs[1].ids)
	}
	if got := fmt.Sprint(clock.slept()); got != "[10s 7s]" {
		t.Fatalf("paused %s, want [10s 7s]: the 429's wait, then the spent budget's", got)
	}
}

func TestRateLimitWait(t *testing.T) {
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	budget := func(h http.Header, _ time.Time) time.Duration {
		if h.Get("X-Remaining") == "0" {
			return 4 * time.Second
		}
		return 0
	}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want time.Duration
	}{
		{"nothing said", nil, 0},
		{"Retry-After seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"Retry-After date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"Retry-After wins over the budget", map[string]string{"Retry-After": "2", "X-Remaining": "0"}, 2 * time.Second},
		{"budget spent", map[string]string{"X-Remaining": "0"}, 4 * time.Second},
		{"unreadable Retry-After falls to the budget", map[string]string{"Retry-After": "soon", "X-Remaining": "0"}, 4 * time.Second},
	} {
		h := http.Header{}
		for k, v := range tc.hdr {
			h.Set(k, v)
		}
		if got := poller.RateLimitWait(h, now, budget); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestResetWait(t *testing.T) {
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":  10 * time.Second, // the default
		"7": 7 * time.Second,  // seconds until the reset
		fmt.Sprint(now.Add(8 * time.Second).Unix()):      8 * time.Second, // the reset as Unix seconds
		fmt.Sprint(now.Add(-time.Minute).Unix()):         0,               // already past
		now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
		"garbage": 10 * time.Second,
	} {
		if got := poller.ResetWait(in, now, 10*time.Second); got != want {
			t.Errorf("ResetWait(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestStatusErrorWait(t *testing.T) {
	for _, tc := range []struct {
		status    int
		wait      time.Duration
		want      time.Duration // RetryAfterError's wait; 0: not one
		permanent bool
	}{
		{429, 0, 10 * time.Second, false},
		{429, 3 * time.Second, 3 * time.Second, false},
		{503, 0, 0, false},
		{503, 20 * time.Second, 20 * time.Second, false},
		{500, 5 * time.Second, 5 * time.Second, false},
		{403, 5 * time.Second, 0, true},
		{401, 0, 0, true},
	} {
		req := httptest.NewRequest(http.MethodGet, "https://vendor.example/x", nil)
		resp := &http.Response{StatusCode: tc.status, Status: http.StatusText(tc.status), Header: http.Header{}}
		err := poller.StatusErrorWait("v", req, resp, []byte("{}"), tc.wait)
		ra, isRA := errors.AsType[*poller.RetryAfterError](err)
		switch {
		case tc.want > 0 && (!isRA || ra.Wait != tc.want):
			t.Errorf("%d with wait %s: %v, want a retry after %s", tc.status, tc.wait, err, tc.want)
		case tc.want == 0 && isRA:
			t.Errorf("%d with wait %s: %v, want no RetryAfterError", tc.status, tc.wait, err)
		case pipeline.IsPermanent(err) != tc.permanent:
			t.Errorf("%d: permanent %v, want %v", tc.status, pipeline.IsPermanent(err), tc.permanent)
		}
	}
}

// TestEnvelopeTimesAccountAndIDs: a record's business time is occurred_at
// with its stamp kept as system_modified_at; a record without an account
// takes the connector's; an id that is not valid UTF-8 is refused.
func TestEnvelopeTimesAccountAndIDs(t *testing.T) {
	business := t0.Add(-48 * time.Hour)
	cl := &pages{steps: []func(poller.Query) (poller.Page, error){func(poller.Query) (poller.Page, error) {
		return poller.Page{Records: []poller.Record{
			{ID: "a", Stamp: t0, OccurredAt: business, Type: "contact.updated", Data: []byte(`{}`)},
			{ID: "b", Stamp: t0.Add(time.Second), Account: "001X", Type: "contact.updated", Data: []byte(`{}`)},
			{ID: "c\xff", Stamp: t0.Add(2 * time.Second), Type: "contact.updated", Data: []byte(`{}`)},
			{ID: "d", Stamp: t0.Add(3 * time.Second), Type: "contact.updated", Data: []byte(`{}`)},
		}}, nil
	}}}
	reg := prometheus.NewRegistry()
	s, err := poller.New(poller.Options{Vendor: "v", Account: "tenant-7", Objects: []string{"obj"}, Sorted: true, Interval: time.Hour, CheckpointInterval: time.Hour,
		StateKey: "k", Store: &memStore{m: map[string]poller.Cursor{}}, Client: cl, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	evs, _, err := s.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type env struct {
		ID               string `json:"id"`
		AccountID        string `json:"account_id"`
		Occurred         string `json:"occurred_at"`
		SystemModifiedAt string `json:"system_modified_at"`
	}
	var got []string
	for _, ev := range evs {
		var e env
		if err := json.Unmarshal(ev.Payload, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s account=%s occurred=%s system=%s time=%s", e.ID, e.AccountID, e.Occurred, e.SystemModifiedAt, ev.Time.Format(time.RFC3339)))
	}
	want := []string{
		"v:obj:a:2026-11-02T09:00:00Z account=tenant-7 occurred=2026-10-31T09:00:00Z system=2026-11-02T09:00:00Z time=2026-10-31T09:00:00Z",
		"v:obj:b:2026-11-02T09:00:01Z account=001X occurred=2026-11-02T09:00:01Z system= time=2026-11-02T09:00:01Z",
		"v:obj:d:2026-11-02T09:00:03Z account=tenant-7 occurred=2026-11-02T09:00:03Z system= time=2026-11-02T09:00:03Z",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("envelopes\n%s\nwant\n%s", got, want)
	}
	if refused := pipelinetest.MetricSum(t, reg, "sluice_poller_records_refused_total", nil); refused != 1 {
		t.Fatalf("sluice_poller_records_refused_total = %v, want 1", refused)
	}
}
