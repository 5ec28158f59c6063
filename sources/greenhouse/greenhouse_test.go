package greenhouse_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/sources/greenhouse"
)

const apiKey = "7f3c0de1a2b34c5d6e7f8091a2b3c4d5-1"

var base = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type rec struct {
	id, candidate int
	created, upd  time.Time
}

type hit struct {
	at     time.Time
	path   string
	query  string
	status int
}

// harvest is a fake Greenhouse Harvest API: id-ordered arrays, page/per_page
// with RFC 5988 Link headers, Basic auth with the key as user, X-RateLimit
// headers and 429 with Retry-After.
type harvest struct {
	srv        *httptest.Server
	mu         sync.Mutex
	candidates map[int]*rec
	apps       map[int]*rec
	hits       []hit
	refuse     map[int]bool // request numbers answered 429
	onPage     func(n int, path string)
	// date, when set, is the clock the Date header shows (else the
	// server's).
	date func() time.Time
}

func newHarvest(t *testing.T) *harvest {
	h := &harvest{candidates: map[int]*rec{}, apps: map[int]*rec{}, refuse: map[int]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/candidates", func(w http.ResponseWriter, r *http.Request) { h.list(w, r, h.candidates, "updated_after") })
	mux.HandleFunc("GET /v1/applications", func(w http.ResponseWriter, r *http.Request) { h.list(w, r, h.apps, "last_activity_after") })
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harvest) add(from, n int, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at = at.Truncate(time.Millisecond) // the API's precision
	for i := from; i < from+n; i++ {
		h.candidates[i] = &rec{id: 4000000 + i, created: at, upd: at}
		if i%5 == 0 {
			h.apps[i] = &rec{id: 9000000 + i, candidate: 4000000 + i, created: at, upd: at}
		}
	}
}

func (h *harvest) touch(i int, at time.Time) {
	h.mu.Lock()
	h.candidates[i].upd = at
	h.mu.Unlock()
}

func (h *harvest) list(w http.ResponseWriter, r *http.Request, coll map[int]*rec, param string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	user, pass, ok := r.BasicAuth()
	if !ok || user != apiKey || pass != "" {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"message":"Invalid Basic Auth credentials"}`))
		return
	}
	q := r.URL.Query()
	h.mu.Lock()
	n := len(h.hits) + 1
	ht := hit{at: time.Now(), path: r.URL.Path, query: r.URL.RawQuery, status: 200}
	w.Header().Set("X-RateLimit-Limit", "50")
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(50-n, 1)))
	if h.refuse[n] {
		ht.status = 429
		h.hits = append(h.hits, ht)
		h.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(429)
		_, _ = w.Write([]byte(`{"message":"Rate limit exceeded"}`))
		return
	}
	h.hits = append(h.hits, ht)
	if h.date != nil {
		w.Header().Set("Date", h.date().UTC().Format(http.TimeFormat))
	}
	since, err := time.Parse(time.RFC3339, q.Get(param))
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	page, _ := strconv.Atoi(q.Get("page"))
	if err != nil || perPage < 1 || perPage > 500 || page < 1 {
		h.mu.Unlock()
		w.WriteHeader(422)
		_, _ = w.Write([]byte(`{"message":"Validation error","errors":[{"message":"invalid parameters","field":"` + param + `"}]}`))
		return
	}
	var match []rec
	for _, c := range coll {
		if !c.upd.Before(since) {
			match = append(match, *c)
		}
	}
	hook := h.onPage
	h.mu.Unlock()
	slices.SortFunc(match, func(a, b rec) int { return a.id - b.id })
	from, to := min((page-1)*perPage, len(match)), min(page*perPage, len(match))
	out := []map[string]any{}
	for _, c := range match[from:to] {
		m := map[string]any{"id": c.id, "created_at": c.created.Format("2006-01-02T15:04:05.000Z")}
		if param == "updated_after" {
			m["first_name"], m["last_name"], m["updated_at"] = "Grace", "Hopper", c.upd.Format("2006-01-02T15:04:05.000Z")
			m["email_addresses"] = []map[string]string{{"value": fmt.Sprintf("grace%d@globex.io", c.id), "type": "personal"}}
		} else {
			m["candidate_id"], m["status"], m["last_activity_at"] = c.candidate, "active", c.upd.Format("2006-01-02T15:04:05.000Z")
		}
		out = append(out, m)
	}
	link := func(p int) string {
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		return fmt.Sprintf("<%s%s?%s>", h.srv.URL, r.URL.Path, v.Encode())
	}
	last := max((len(match)+perPage-1)/perPage, 1)
	if page < last {
		w.Header().Set("Link", link(page+1)+`; rel="next", `+link(last)+`; rel="last"`)
	} else if page > 1 {
		w.Header().Set("Link", link(page-1)+`; rel="prev", `+link(last)+`; rel="last"`)
	}
	_ = json.NewEncoder(w).Encode(out)
	if hook != nil {
		hook(n, r.URL.Path)
	}
}

func (h *harvest) wantIDs() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := map[string]bool{}
	for _, c := range h.candidates {
		ids[poller.EventID("greenhouse", "candidates", strconv.Itoa(c.id), c.upd)] = true
	}
	for _, a := range h.apps {
		ids[poller.EventID("greenhouse", "applications", strconv.Itoa(a.id), a.upd)] = true
	}
	return ids
}

func (h *harvest) requests() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.hits)
}

func sourceYAML(h *harvest, file string) string {
	return fmt.Sprintf(`  greenhouse:
    api_key: %s
    base_url: %s/v1
    objects: [candidates, applications]
    per_page: 5
    interval: 50ms
    checkpoint_interval: 20ms
    checkpoint: {key: ats, file: {path: %q}}`, apiKey, h.srv.URL, file)
}

func TestPagesEnvelopesAndRestart(t *testing.T) {
	h := newHarvest(t)
	h.add(0, 23, base)
	file := filepath.Join(t.TempDir(), "c.json")
	run := pollertest.Start(t, greenhouse.Register, sourceYAML(h, file), nil)
	first := h.wantIDs()
	pollertest.WaitFor(t, "every candidate and application", func() bool { return pollertest.HasAll(run.Sink, first) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	envs, counts := pollertest.Envelopes(t, run.Sink)
	if len(counts) != 23+5 {
		t.Fatalf("%d events, want 28", len(counts))
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
	for _, e := range envs {
		var d struct {
			ID          int `json:"id"`
			CandidateID int `json:"candidate_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		cand := d.ID
		if d.CandidateID != 0 {
			cand = d.CandidateID
		}
		if e.Source != "greenhouse" || e.Key != "greenhouse:"+strconv.Itoa(cand) || (e.Type != "candidate.created" && e.Type != "application.created") {
			t.Fatalf("envelope %+v", e)
		}
	}
	fs, _ := poller.NewFileStore(file)
	cur, ok, err := fs.Load(t.Context(), "ats", "candidates")
	if err != nil || !ok || time.Since(cur.Time) > time.Minute || cur.Time.After(time.Now()) {
		t.Fatalf("cursor %+v %v %v: want the last query's start", cur, ok, err)
	}
	n := len(h.requests())
	h.add(100, 3, time.Now().UTC())
	run2 := pollertest.Start(t, greenhouse.Register, sourceYAML(h, file), nil)
	all := h.wantIDs()
	fresh := map[string]bool{}
	for id := range all {
		if !first[id] {
			fresh[id] = true
		}
	}
	pollertest.WaitFor(t, "candidates added while stopped", func() bool { return pollertest.HasAll(run2.Sink, fresh) })
	if err := run2.Stop(t); err != nil {
		t.Fatal(err)
	}
	for id := range run2.Sink.IDs() {
		if first[id] {
			t.Errorf("%s re-delivered after the restart", id)
		}
	}
	// The restart asks from the saved cursor less the overlap (1m).
	wantQ := "updated_after=" + url.QueryEscape(cur.Time.Add(-time.Minute).UTC().Format(time.RFC3339))
	if r := h.requests()[n]; r.path != "/v1/candidates" || !strings.Contains(r.query, wantQ) {
		t.Fatalf("first request after the restart %+v, want %s", r, wantQ)
	}
}

func TestEditsDuringASweepAndRetryAfter(t *testing.T) {
	h := newHarvest(t)
	h.add(0, 20, base)
	h.refuse[3] = true
	var edited time.Time
	h.onPage = func(n int, path string) {
		if n == 1 { // page 1 of candidates read: edit a read one and an unread one
			edited = time.Now().UTC().Truncate(time.Millisecond)
			h.touch(2, edited)
			h.touch(17, edited)
		}
	}
	run := pollertest.Start(t, greenhouse.Register, sourceYAML(h, filepath.Join(t.TempDir(), "c.json")), nil)
	pollertest.WaitFor(t, "the edits", func() bool {
		h.mu.Lock()
		e := edited
		h.mu.Unlock()
		return !e.IsZero() && pollertest.HasAll(run.Sink, map[string]bool{
			poller.EventID("greenhouse", "candidates", "4000002", e): true,
			poller.EventID("greenhouse", "candidates", "4000017", e): true,
		})
	})
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	reqs := h.requests()
	if reqs[2].status != 429 {
		t.Fatalf("third request %+v, want the 429", reqs[2])
	}
	if gap := reqs[3].at.Sub(reqs[2].at); gap < time.Second || reqs[3].query != reqs[2].query {
		t.Fatalf("retried %q %s after a 429 with Retry-After: 1 (refused %q)", reqs[3].query, gap, reqs[2].query)
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{`<https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2>; rel="next", <https://harvest.greenhouse.io/v1/candidates?page=474&per_page=2>; rel="last"`, "https://harvest.greenhouse.io/v1/candidates?page=2&per_page=2"},
		{`<https://harvest.greenhouse.io/v1/candidates?page=1&per_page=2>; rel="prev", <https://harvest.greenhouse.io/v1/candidates?page=474&per_page=2>; rel="last"`, ""},
		{``, ""},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Link", tc.header)
		}
		if got := poller.NextLink(h); got != tc.want {
			t.Errorf("NextLink(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestCursorStaysWhenThePipelineFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failFrom int
	}{
		{"nothing acked", 1},
		{"first batches acked, then the sink fails", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarvest(t)
			h.add(0, 40, base)
			sink := pollertest.FailingSink(tc.failFrom)
			file := filepath.Join(t.TempDir(), "c.json")
			run := pollertest.Start(t, greenhouse.Register, sourceYAML(h, file), sink)
			if err := run.Wait(t); err == nil {
				t.Fatal("pipeline with a failing sink and no dead letter ended without error")
			}
			// A whole-query cursor moves only when every page of the query
			// was written: here none was completely.
			fs, _ := poller.NewFileStore(file)
			for _, o := range []string{"candidates", "applications"} {
				if c, ok, err := fs.Load(t.Context(), "ats", o); ok || err != nil {
					t.Fatalf("%s cursor saved (%+v, %v) though the query was not all written", o, c, err)
				}
			}
		})
	}
}
