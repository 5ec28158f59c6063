package hubspot_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/sources/hubspot"
)

const pat = "pat-na1-11111111-2222-3333-4444-555555555555"

var base = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type contact struct {
	id       int
	modified time.Time
	email    string
}

type request struct {
	at     time.Time
	anchor int64
	after  int
	status int
	more   bool // the answer had a next page
}

// portal is a fake HubSpot account answering the CRM v3 search API as
// documented: POST /crm/v3/objects/contacts/search, sorted by a property,
// offset `after` paging up to 10,000 results, 429 with its error body.
type portal struct {
	srv      *httptest.Server
	mu       sync.Mutex
	contacts map[int]*contact
	reqs     []request
	limit429 map[int]bool // request numbers (1-based) answered 429
	onPage   func(n int)
}

func newPortal(t *testing.T) *portal {
	p := &portal{contacts: map[int]*contact{}, limit429: map[int]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.search))
	t.Cleanup(p.srv.Close)
	return p
}

// add creates contacts from..from+n-1, perMs of them per millisecond.
func (p *portal) add(from, n, perMs int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := from; i < from+n; i++ {
		p.contacts[i] = &contact{id: 50000 + i, modified: base.Add(time.Duration(i/perMs) * time.Millisecond), email: fmt.Sprintf("ada.lovelace%d@acme-corp.com", i)}
	}
}

func (p *portal) touch(i int, at time.Time) {
	p.mu.Lock()
	p.contacts[i].modified = at
	p.mu.Unlock()
}

type searchReq struct {
	FilterGroups []struct {
		Filters []struct{ PropertyName, Operator, Value string } `json:"filters"`
	} `json:"filterGroups"`
	Sorts []struct{ PropertyName, Direction string } `json:"sorts"`
	Limit int                                        `json:"limit"`
	After string                                     `json:"after"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *portal) search(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/crm/v3/objects/contacts/search" {
		writeJSON(w, 404, map[string]string{"status": "error", "message": "Resource not found", "category": "OBJECT_NOT_FOUND"})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+pat {
		writeJSON(w, 401, map[string]string{"status": "error", "message": "Authentication credentials not found.", "correlationId": "0b6b2f47-8c43-4d5b-9b5e-7d1f2d6f0001", "category": "INVALID_AUTHENTICATION"})
		return
	}
	var sr searchReq
	if err := json.NewDecoder(r.Body).Decode(&sr); err != nil || len(sr.FilterGroups) != 1 || len(sr.FilterGroups[0].Filters) != 1 ||
		sr.FilterGroups[0].Filters[0].PropertyName != "lastmodifieddate" || sr.FilterGroups[0].Filters[0].Operator != "GTE" ||
		len(sr.Sorts) != 1 || sr.Sorts[0].Direction != "ASCENDING" || sr.Limit < 1 || sr.Limit > 200 {
		writeJSON(w, 400, map[string]string{"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"})
		return
	}
	anchor, _ := strconv.ParseInt(sr.FilterGroups[0].Filters[0].Value, 10, 64)
	after, _ := strconv.Atoi(sr.After)
	p.mu.Lock()
	n := len(p.reqs) + 1
	req := request{at: time.Now(), anchor: anchor, after: after, status: 200}
	if p.limit429[n] {
		req.status = 429
		p.reqs = append(p.reqs, req)
		p.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 429, map[string]string{"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "SECONDLY", "groupName": "publicapi:private-app:search"})
		return
	}
	if after+sr.Limit > hubspot.SearchLimit {
		req.status = 400
		p.reqs = append(p.reqs, req)
		p.mu.Unlock()
		writeJSON(w, 400, map[string]string{"status": "error", "message": "There was a problem with the request.", "category": "VALIDATION_ERROR"})
		return
	}
	p.reqs = append(p.reqs, req)
	var match []contact
	for _, c := range p.contacts {
		if c.modified.UnixMilli() >= anchor {
			match = append(match, *c)
		}
	}
	slices.SortFunc(match, func(a, b contact) int {
		if c := a.modified.Compare(b.modified); c != 0 {
			return c
		}
		return a.id - b.id
	})
	hook := p.onPage
	p.mu.Unlock()
	end := min(after+sr.Limit, len(match))
	results := []map[string]any{}
	for _, c := range match[min(after, len(match)):end] {
		ts := c.modified.Format("2006-01-02T15:04:05.000Z")
		results = append(results, map[string]any{
			"id": strconv.Itoa(c.id),
			"properties": map[string]any{
				"createdate": "2024-03-01T09:30:00.000Z", "email": c.email, "hs_object_id": strconv.Itoa(c.id),
				"lastmodifieddate": ts, "associatedcompanyid": "9001",
			},
			"createdAt": "2024-03-01T09:30:00.000Z", "updatedAt": ts, "archived": false,
		})
	}
	resp := map[string]any{"total": len(match), "results": results}
	if end < len(match) {
		resp["paging"] = map[string]any{"next": map[string]string{"after": strconv.Itoa(end), "link": "?after=" + strconv.Itoa(end)}}
	}
	if end < len(match) {
		p.mu.Lock()
		p.reqs[n-1].more = true
		p.mu.Unlock()
	}
	writeJSON(w, 200, resp)
	if hook != nil {
		hook(n)
	}
}

func (p *portal) requests() []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

func (p *portal) wantIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := map[string]bool{}
	for _, c := range p.contacts {
		ids[eventID(*c)] = true
	}
	return ids
}

func eventID(c contact) string {
	return poller.EventID("hubspot", "contacts", strconv.Itoa(c.id), c.modified)
}

func sourceYAML(p *portal, file string, pageSize int) string {
	return fmt.Sprintf(`  hubspot:
    token: %s
    base_url: %s
    objects: [{name: contacts, properties: [email, firstname, lastname]}]
    page_size: %d
    interval: 50ms
    checkpoint_interval: 20ms
    checkpoint: {key: crm, file: {path: %q}}`, pat, p.srv.URL, pageSize, file)
}

func TestPagingAndTheSearchLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		records    int
		perMs      int
		pageSize   int
		wantAfter  bool // `after` paging used (ties)
		wantAnchor bool // re-anchored on a later time
	}{
		{"several pages re-anchor", 450, 1, 100, false, true},
		{"ties on one millisecond page with after", 450, 1000, 100, true, true},
		{"past the 10000 results one search pages through", 10300, 3, 200, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPortal(t)
			p.add(0, tc.records, tc.perMs)
			run := pollertest.Start(t, hubspot.Register, sourceYAML(p, filepath.Join(t.TempDir(), "c.json"), tc.pageSize), nil)
			want := p.wantIDs()
			pollertest.WaitFor(t, "every contact", func() bool { return pollertest.HasAll(run.Sink, want) })
			if err := run.Stop(t); err != nil {
				t.Fatal(err)
			}
			_, counts := pollertest.Envelopes(t, run.Sink)
			if len(counts) != tc.records {
				t.Fatalf("%d events, want %d", len(counts), tc.records)
			}
			var usedAfter, reanchored bool
			for _, r := range p.requests() { // the first poll's requests
				if r.status != 200 {
					t.Fatalf("request %+v failed", r)
				}
				usedAfter = usedAfter || r.after > 0
				reanchored = reanchored || r.anchor > 0
				if !r.more {
					break
				}
			}
			if usedAfter != tc.wantAfter || reanchored != tc.wantAnchor {
				t.Fatalf("after used %v (want %v), re-anchored %v (want %v)", usedAfter, tc.wantAfter, reanchored, tc.wantAnchor)
			}
		})
	}
}

func TestEnvelope(t *testing.T) {
	p := newPortal(t)
	p.add(0, 3, 1)
	run := pollertest.Start(t, hubspot.Register, sourceYAML(p, filepath.Join(t.TempDir(), "c.json"), 100), nil)
	want := p.wantIDs()
	pollertest.WaitFor(t, "contacts", func() bool { return pollertest.HasAll(run.Sink, want) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	envs, _ := pollertest.Envelopes(t, run.Sink)
	e := envs[0]
	var data struct {
		ID         string            `json:"id"`
		Properties map[string]string `json:"properties"`
	}
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	occurred, _ := time.Parse(time.RFC3339Nano, e.OccurredAt)
	stamp, _ := time.Parse(time.RFC3339Nano, data.Properties["lastmodifieddate"])
	if e.Source != "hubspot" || e.Type != "contact.updated" || e.Key != "hubspot:"+data.ID || e.AccountID != "9001" || !occurred.Equal(stamp) {
		t.Fatalf("envelope %+v", e)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	p := newPortal(t)
	p.add(0, 250, 1)
	p.limit429[2] = true
	run := pollertest.Start(t, hubspot.Register, sourceYAML(p, filepath.Join(t.TempDir(), "c.json"), 100), nil)
	want := p.wantIDs()
	pollertest.WaitFor(t, "every contact", func() bool { return pollertest.HasAll(run.Sink, want) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	reqs := p.requests()
	if reqs[1].status != 429 {
		t.Fatalf("second request %+v, want the 429", reqs[1])
	}
	// The pause asked for is TestRateLimitHeadersOnEveryAnswer's to check,
	// without waiting on the wall clock.
	if reqs[2].anchor != reqs[1].anchor || reqs[2].after != reqs[1].after {
		t.Fatalf("retry %+v is not the request that was refused %+v", reqs[2], reqs[1])
	}
}

func TestRestartResumesFromTheCursor(t *testing.T) {
	p := newPortal(t)
	p.add(0, 120, 2)
	file := filepath.Join(t.TempDir(), "c.json")
	run := pollertest.Start(t, hubspot.Register, sourceYAML(p, file, 50), nil)
	first := p.wantIDs()
	pollertest.WaitFor(t, "first run", func() bool { return pollertest.HasAll(run.Sink, first) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	n := len(p.requests())
	p.add(120, 30, 2)
	p.mu.Lock()
	p.contacts[1000] = &contact{id: 40000, modified: base.Add(59 * time.Millisecond), email: "tie@acme-corp.com"} // on the cursor's millisecond
	p.mu.Unlock()
	run2 := pollertest.Start(t, hubspot.Register, sourceYAML(p, file, 50), nil)
	all := p.wantIDs()
	fresh := map[string]bool{}
	for id := range all {
		if !first[id] {
			fresh[id] = true
		}
	}
	pollertest.WaitFor(t, "records added while stopped", func() bool { return pollertest.HasAll(run2.Sink, fresh) })
	if err := run2.Stop(t); err != nil {
		t.Fatal(err)
	}
	if r := p.requests()[n]; r.anchor != base.Add(59*time.Millisecond).UnixMilli() || r.after != 0 {
		t.Fatalf("second run started with %+v, want the cursor's millisecond", r)
	}
	for id := range run2.Sink.IDs() {
		if first[id] && id != eventID(contact{id: 50118, modified: base.Add(59 * time.Millisecond)}) {
			t.Errorf("%s re-delivered after the restart", id)
		}
	}
}

func TestRecordsModifiedDuringPagingAreNotSkipped(t *testing.T) {
	p := newPortal(t)
	p.add(0, 300, 1)
	later := base.Add(time.Hour)
	p.onPage = func(n int) {
		if n == 1 { // contacts 0..99 read: edit one read and two unread
			p.touch(5, later)
			p.touch(150, later)
			p.touch(160, later.Add(time.Millisecond))
		}
	}
	run := pollertest.Start(t, hubspot.Register, sourceYAML(p, filepath.Join(t.TempDir(), "c.json"), 100), nil)
	pollertest.WaitFor(t, "the edits", func() bool {
		return pollertest.HasAll(run.Sink, map[string]bool{
			eventID(contact{id: 50005, modified: later}): true, eventID(contact{id: 50150, modified: later}): true, eventID(contact{id: 50160, modified: later.Add(time.Millisecond)}): true,
		})
	})
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	// Every record not edited must be there: offset paging over the live,
	// re-sorted result would have skipped the ones shifted down.
	got := run.Sink.IDs()
	for i := 0; i < 300; i++ {
		if i == 150 || i == 160 {
			continue
		}
		c := contact{id: 50000 + i, modified: base.Add(time.Duration(i) * time.Millisecond)}
		if !got[eventID(c)] {
			t.Errorf("contact %d skipped", c.id)
		}
	}
}
