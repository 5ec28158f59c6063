package vendorreplay

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Credentials are what the API accepts; a connector with anything else is
// answered 401 in its vendor's error shape.
type Credentials struct {
	SalesforceClientID     string
	SalesforceClientSecret string
	HubSpotToken           string
	GreenhouseAPIKey       string
	LeverAPIKey            string
}

// DemoCredentials are the throwaway credentials the demo's pipelines use.
func DemoCredentials() Credentials {
	return Credentials{
		SalesforceClientID:     "demo-connected-app",
		SalesforceClientSecret: "demo-client-secret",
		HubSpotToken:           "pat-na1-demo-private-app-token",
		GreenhouseAPIKey:       "demo-harvest-api-key",
		LeverAPIKey:            "demo-lever-api-key",
	}
}

// APIOption adjusts an API.
type APIOption func(*API)

// WithCredentials sets the accepted credentials (default DemoCredentials).
func WithCredentials(c Credentials) APIOption { return func(a *API) { a.creds = c } }

// WithSalesforceBatchSize sets how many records a Salesforce query page
// holds (default 5, so the recorded objects span several pages; the real
// default is 2,000).
func WithSalesforceBatchSize(n int) APIOption { return func(a *API) { a.sfBatch = n } }

// WithSalesforceTokenUses makes every Salesforce access token expire after
// n API calls (default 6; 0 never), so the connector's refresh on 401 runs.
func WithSalesforceTokenUses(n int) APIOption { return func(a *API) { a.sfTokenUses = n } }

// WithHubSpotThrottle answers every nth HubSpot search 429 with
// Retry-After (default 4; 0 never), as HubSpot's per-second search limit
// does under load.
func WithHubSpotThrottle(n int) APIOption { return func(a *API) { a.hsThrottleEvery = n } }

// VendorStats counts what one vendor's API answered.
type VendorStats struct {
	Requests     int // every request, whatever the answer
	Pages        int // 200 answers carrying records or an empty page
	Records      int // records in those pages
	Unauthorized int // 401s: bad or expired credentials
	Throttled    int // 429s
}

// API answers the polled vendors' REST APIs over a recorded Set. Mounted
// at base, the connectors' URLs are:
//
//	salesforce instance_url  base + "/salesforce"
//	hubspot    base_url      base + "/hubspot"
//	greenhouse base_url      base + "/greenhouse/v1"
//	lever      base_url      base + "/lever/v1"
type API struct {
	set             *Set
	creds           Credentials
	sfBatch         int
	sfTokenUses     int
	hsThrottleEvery int
	now             func() time.Time
	mux             *http.ServeMux

	mu         sync.Mutex
	stats      map[string]*VendorStats
	sfTokens   map[string]int      // access token → calls left (<0: unlimited)
	sfCursors  map[string]sfCursor // nextRecordsUrl locator → rest of a query
	sfSeq      int
	hsSearches int
}

// NewAPI serves set's records.
func NewAPI(set *Set, opts ...APIOption) *API {
	a := &API{
		set: set, creds: DemoCredentials(), sfBatch: 5, sfTokenUses: 6, hsThrottleEvery: 4, now: time.Now,
		stats: map[string]*VendorStats{}, sfTokens: map[string]int{}, sfCursors: map[string]sfCursor{},
	}
	for _, o := range opts {
		o(a)
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("POST /salesforce/services/oauth2/token", a.salesforceToken)
	a.mux.HandleFunc("GET /salesforce/services/data/{version}/{endpoint}", a.salesforceQuery)
	a.mux.HandleFunc("GET /salesforce/services/data/{version}/{endpoint}/{locator}", a.salesforceMore)
	a.mux.HandleFunc("POST /hubspot/crm/v3/objects/{object}/search", a.hubspotSearch)
	a.mux.HandleFunc("GET /greenhouse/v1/{object}", a.greenhouseList)
	a.mux.HandleFunc("GET /lever/v1/{object}", a.leverList)
	return a
}

// ServeHTTP routes to the vendor handlers.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vendor, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	a.count(vendor, func(s *VendorStats) { s.Requests++ })
	a.mux.ServeHTTP(w, r)
}

// Stats reports, per vendor, what the API has answered so far.
func (a *API) Stats() map[string]VendorStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]VendorStats, len(a.stats))
	for v, s := range a.stats {
		out[v] = *s
	}
	return out
}

func (a *API) count(vendor string, f func(*VendorStats)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats[vendor]
	if s == nil {
		s = &VendorStats{}
		a.stats[vendor] = s
	}
	f(s)
}

func (a *API) page(vendor string, records int) {
	a.count(vendor, func(s *VendorStats) { s.Pages++; s.Records += records })
}

// unauthorized counts a refusal and answers 401 with the vendor's body.
func (a *API) unauthorized(w http.ResponseWriter, vendor string, body any) {
	a.count(vendor, func(s *VendorStats) { s.Unauthorized++ })
	writeJSON(w, http.StatusUnauthorized, body)
}

// basicKey reports whether r carries key as its Basic-auth user name, the
// way Harvest and Lever take API keys.
func basicKey(r *http.Request, key string) bool {
	user, _, ok := r.BasicAuth()
	return ok && user == key
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// since returns the records stamped at or after t (deleted ones only when
// withDeleted), ordered by less.
func since(recs []record, t time.Time, withDeleted bool, less func(a, b record) int) []record {
	var out []record
	for _, r := range recs {
		if !r.stamp.Before(t) && (withDeleted || !r.deleted) {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, less)
	return out
}

func byStampThenID(a, b record) int {
	if c := a.stamp.Compare(b.stamp); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

func raws(recs []record) []json.RawMessage {
	out := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		out[i] = r.raw
	}
	return out
}
