package lever_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/sources/lever"
)

const apiKey = "lvr_3f1c2e9a8b7d6c5e4f3a2b1c0d9e8f7a"

var base = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type opp struct {
	id, contact string
	created     int64
	updated     int64
}

type hit struct {
	at     time.Time
	query  string
	status int
}

// api is a fake Lever API: GET /v1/opportunities with updated_at_start,
// limit and an opaque offset, answering {data, hasNext, next}; Basic auth
// with the key as user; 429 with Retry-After.
type api struct {
	srv    *httptest.Server
	mu     sync.Mutex
	opps   map[int]*opp
	hits   []hit
	refuse map[int]bool
	onPage func(n int)
	// date, when set, is the clock the Date header shows (else the
	// server's).
	date func() time.Time
}

func newAPI(t *testing.T) *api {
	a := &api{opps: map[int]*opp{}, refuse: map[int]bool{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.list))
	t.Cleanup(a.srv.Close)
	return a
}

func oppID(i int) string { return fmt.Sprintf("250d8f03-738a-4bba-a671-8a3d73477%03d", i) }

func (a *api) add(from, n int, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := from; i < from+n; i++ {
		a.opps[i] = &opp{id: oppID(i), contact: fmt.Sprintf("7f23e772-f2cf-4a8f-a9a8-2c1e1a4b%04d", i%7), created: at.UnixMilli(), updated: at.UnixMilli()}
	}
}

func (a *api) touch(i int, at time.Time) {
	a.mu.Lock()
	a.opps[i].updated = at.UnixMilli()
	a.mu.Unlock()
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if user, pass, ok := r.BasicAuth(); r.URL.Path != "/v1/opportunities" || !ok || user != apiKey || pass != "" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"code":"UnauthorizedError","message":"Invalid API key"}`))
		return
	}
	q := r.URL.Query()
	a.mu.Lock()
	n := len(a.hits) + 1
	h := hit{at: time.Now(), query: r.URL.RawQuery, status: 200}
	if a.refuse[n] {
		h.status = 429
		a.hits = append(a.hits, h)
		a.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(429)
		_, _ = w.Write([]byte(`{"code":"TooManyRequests","message":"Rate limit exceeded"}`))
		return
	}
	a.hits = append(a.hits, h)
	if a.date != nil {
		w.Header().Set("Date", a.date().UTC().Format(http.TimeFormat))
	}
	since, err1 := strconv.ParseInt(q.Get("updated_at_start"), 10, 64)
	limit, err2 := strconv.Atoi(q.Get("limit"))
	off := 0
	if o := q.Get("offset"); o != "" {
		b, _ := base64.RawURLEncoding.DecodeString(o)
		off, _ = strconv.Atoi(string(b))
	}
	if err1 != nil || err2 != nil || limit < 1 || limit > 100 {
		a.mu.Unlock()
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"code":"BadRequestError","message":"Invalid parameters"}`))
		return
	}
	var match []opp
	for _, o := range a.opps {
		if o.updated >= since {
			match = append(match, *o)
		}
	}
	hook := a.onPage
	a.mu.Unlock()
	// Lever lists by creation, newest first, not by update time.
	slices.SortFunc(match, func(x, y opp) int { return strings.Compare(y.id, x.id) })
	end := min(off+limit, len(match))
	data := []map[string]any{}
	for _, o := range match[min(off, len(match)):end] {
		data = append(data, map[string]any{
			"id": o.id, "name": "Katherine Johnson", "headline": "Hooli", "contact": o.contact,
			"emails": []string{"katherine@hooli.xyz"}, "stage": "lead-new", "origin": "sourced",
			"createdAt": o.created, "updatedAt": o.updated, "archived": nil, "tags": []string{"referral"},
		})
	}
	resp := map[string]any{"data": data, "hasNext": end < len(match)}
	if end < len(match) {
		resp["next"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	_ = json.NewEncoder(w).Encode(resp)
	if hook != nil {
		hook(n)
	}
}

func (a *api) wantIDs() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := map[string]bool{}
	for _, o := range a.opps {
		ids[poller.EventID("lever", "opportunities", o.id, time.UnixMilli(o.updated))] = true
	}
	return ids
}

func (a *api) requests() []hit {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.hits)
}

func sourceYAML(a *api, file string) string {
	return fmt.Sprintf(`  lever:
    api_key: %s
    base_url: %s/v1
    limit: 10
    interval: 50ms
    checkpoint_interval: 20ms
    checkpoint: {key: ats, file: {path: %q}}`, apiKey, a.srv.URL, file)
}

func TestPagesEnvelopesAndRestart(t *testing.T) {
	a := newAPI(t)
	a.add(0, 35, base)
	file := filepath.Join(t.TempDir(), "c.json")
	run := pollertest.Start(t, lever.Register, sourceYAML(a, file), nil)
	first := a.wantIDs()
	pollertest.WaitFor(t, "every opportunity", func() bool { return pollertest.HasAll(run.Sink, first) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	envs, counts := pollertest.Envelopes(t, run.Sink)
	if len(counts) != 35 {
		t.Fatalf("%d events, want 35", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
	var d struct{ Contact string }
	_ = json.Unmarshal(envs[0].Data, &d)
	if e := envs[0]; e.Source != "lever" || e.Type != "opportunity.created" || e.Key != "lever:"+d.Contact || e.OccurredAt != "2026-11-02T09:00:00Z" {
		t.Fatalf("envelope %+v", e)
	}
	fs, _ := poller.NewFileStore(file)
	cur, ok, err := fs.Load(t.Context(), "ats", "opportunities")
	if err != nil || !ok || time.Since(cur.Time) > time.Minute {
		t.Fatalf("cursor %+v %v %v", cur, ok, err)
	}
	n := len(a.requests())
	a.add(100, 4, time.Now())
	run2 := pollertest.Start(t, lever.Register, sourceYAML(a, file), nil)
	all := a.wantIDs()
	fresh := map[string]bool{}
	for id := range all {
		if !first[id] {
			fresh[id] = true
		}
	}
	pollertest.WaitFor(t, "opportunities added while stopped", func() bool { return pollertest.HasAll(run2.Sink, fresh) })
	if err := run2.Stop(t); err != nil {
		t.Fatal(err)
	}
	for id := range run2.Sink.IDs() {
		if first[id] {
			t.Errorf("%s re-delivered after the restart", id)
		}
	}
	if want := "updated_at_start=" + strconv.FormatInt(cur.Time.Add(-time.Minute).UnixMilli(), 10); !strings.Contains(a.requests()[n].query, want) {
		t.Fatalf("first request after the restart %q, want %s", a.requests()[n].query, want)
	}
}

func TestEditsDuringASweepAndRetryAfter(t *testing.T) {
	a := newAPI(t)
	a.add(0, 30, base)
	a.refuse[2] = true
	var mu sync.Mutex
	var edited time.Time
	a.onPage = func(n int) {
		if n == 1 {
			mu.Lock()
			edited = time.Now().Truncate(time.Millisecond)
			mu.Unlock()
			a.touch(29, edited) // on the page just read
			a.touch(3, edited)  // on a page not read yet
		}
	}
	run := pollertest.Start(t, lever.Register, sourceYAML(a, filepath.Join(t.TempDir(), "c.json")), nil)
	pollertest.WaitFor(t, "the edits", func() bool {
		mu.Lock()
		e := edited
		mu.Unlock()
		return !e.IsZero() && pollertest.HasAll(run.Sink, map[string]bool{
			poller.EventID("lever", "opportunities", oppID(29), e): true,
			poller.EventID("lever", "opportunities", oppID(3), e):  true,
		})
	})
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	reqs := a.requests()
	if reqs[1].status != 429 {
		t.Fatalf("second request %+v, want the 429", reqs[1])
	}
	if gap := reqs[2].at.Sub(reqs[1].at); gap < time.Second || reqs[2].query != reqs[1].query {
		t.Fatalf("retried %q %s after a 429 with Retry-After: 1 (refused %q)", reqs[2].query, gap, reqs[1].query)
	}
}
