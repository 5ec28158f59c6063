package salesforce_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/salesforce"
)

const sfLayout = "2006-01-02T15:04:05.000-0700"

type contact struct {
	ID, Account, Last string
	Created, Stamp    time.Time
}

// org is a fake Salesforce org: the OAuth2 token endpoint and the REST
// query API, answering in Salesforce's documented shapes.
type org struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	contacts map[string]*contact
	pageSize int
	locators map[string][]contact
	valid    map[string]bool
	issued   int
	unauth   int
	queries  []string
	pages    int
	usage    string
	onPage   func(page int) // called, unlocked, after a page is served
}

func newOrg(t *testing.T) *org {
	o := &org{t: t, contacts: map[string]*contact{}, pageSize: 10, locators: map[string][]contact{}, valid: map[string]bool{}, usage: "api-usage=18/15000"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", o.token)
	mux.HandleFunc("GET /services/data/v60.0/query", o.query)
	mux.HandleFunc("GET /services/data/v60.0/query/{locator}", o.more)
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

var base = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func sfID(prefix string, n int) string { return fmt.Sprintf("%s%012dAAA", prefix, n) }

// add creates contacts n..n+count-1, two per second.
func (o *org) add(from, count int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := from; i < from+count; i++ {
		st := base.Add(time.Duration(i/2) * time.Second)
		o.contacts[sfID("003", i)] = &contact{ID: sfID("003", i), Account: sfID("001", i%4), Last: "Lovelace" + strconv.Itoa(i), Created: st, Stamp: st}
	}
}

func (o *org) touch(n int, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.contacts[sfID("003", n)]
	c.Stamp, c.Last = at, c.Last+"-edited"
}

func (o *org) expireSessions() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.valid)
}

func (o *org) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || id != "3MVG9-consumer-key" || secret != "consumer-secret" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"invalid client credentials"}`))
		return
	}
	o.mu.Lock()
	o.issued++
	tok := fmt.Sprintf("00DRM000000TEST!AQ0AQtoken%d", o.issued)
	o.valid[tok] = true
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"access_token": tok, "signature": "c2lnbmF0dXJl", "scope": "api", "instance_url": o.srv.URL,
		"id": "https://login.salesforce.com/id/00DRM000000TEST/005RM000000USER", "token_type": "Bearer", "issued_at": "1762074000000",
	})
}

// authorized answers 401 with Salesforce's error body unless the bearer
// token is current.
func (o *org) authorized(w http.ResponseWriter, r *http.Request) bool {
	o.mu.Lock()
	ok := o.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		o.unauth++
	}
	o.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("WWW-Authenticate", `Token`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`))
	}
	return ok
}

var soqlRE = regexp.MustCompile(`^SELECT (.+) FROM (\w+) WHERE SystemModstamp >= (\S+) ORDER BY SystemModstamp, Id$`)

func (o *org) query(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(w, r) {
		return
	}
	q := r.URL.Query().Get("q")
	m := soqlRE.FindStringSubmatch(q)
	var since time.Time
	if m != nil {
		since, _ = time.Parse(time.RFC3339, m[3])
	}
	if m == nil || m[2] != "Contact" || since.IsZero() {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `[{"message":"unexpected token: %s","errorCode":"MALFORMED_QUERY"}]`, strings.ReplaceAll(q, `"`, `'`))
		return
	}
	o.mu.Lock()
	o.queries = append(o.queries, q)
	var snap []contact
	for _, c := range o.contacts {
		if !c.Stamp.Before(since) {
			snap = append(snap, *c)
		}
	}
	slices.SortFunc(snap, func(a, b contact) int {
		if c := a.Stamp.Compare(b.Stamp); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	loc := fmt.Sprintf("01gRM%010d", len(o.locators)+1)
	o.locators[loc] = snap
	o.mu.Unlock()
	o.serve(w, loc, 0)
}

func (o *org) more(w http.ResponseWriter, r *http.Request) {
	if !o.authorized(w, r) {
		return
	}
	loc, off, _ := strings.Cut(r.PathValue("locator"), "-")
	n, _ := strconv.Atoi(off)
	o.mu.Lock()
	_, ok := o.locators[loc]
	o.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]`))
		return
	}
	o.serve(w, loc, n)
}

func (o *org) serve(w http.ResponseWriter, loc string, off int) {
	o.mu.Lock()
	snap := o.locators[loc]
	end := min(off+o.pageSize, len(snap))
	recs := make([]map[string]any, 0, end-off)
	for _, c := range snap[off:end] {
		recs = append(recs, map[string]any{
			"attributes": map[string]string{"type": "Contact", "url": "/services/data/v60.0/sobjects/Contact/" + c.ID},
			"Id":         c.ID, "AccountId": c.Account, "LastName": c.Last, "Email": strings.ToLower(c.Last) + "@acme-corp.com",
			"CreatedDate": c.Created.Format(sfLayout), "LastModifiedDate": c.Stamp.Format(sfLayout), "SystemModstamp": c.Stamp.Format(sfLayout), "IsDeleted": false,
		})
	}
	resp := map[string]any{"totalSize": len(snap), "done": end == len(snap), "records": recs}
	if end < len(snap) {
		resp["nextRecordsUrl"] = fmt.Sprintf("/services/data/v60.0/query/%s-%d", loc, end)
	}
	o.pages++
	page := o.pages
	hook := o.onPage
	w.Header().Set("Sforce-Limit-Info", o.usage)
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(resp)
	if hook != nil {
		hook(page)
	}
}

func (o *org) stats() (issued, unauth int, queries []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.issued, o.unauth, slices.Clone(o.queries)
}

func sourceYAML(o *org, cursorFile string) string {
	return fmt.Sprintf(`  salesforce:
    instance_url: %s
    objects: [{name: Contact, fields: [Id, AccountId, LastName, Email, CreatedDate, LastModifiedDate, IsDeleted]}]
    auth: {client_id: 3MVG9-consumer-key, client_secret: consumer-secret}
    interval: 50ms
    checkpoint_interval: 20ms
    checkpoint: {key: crm, file: {path: %s}}`, o.srv.URL, cursorFile)
}

func eventID(c contact) string { return poller.EventID("salesforce", "Contact", c.ID, c.Stamp) }

func (o *org) wantIDs() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	ids := map[string]bool{}
	for _, c := range o.contacts {
		ids[eventID(*c)] = true
	}
	return ids
}

func loadCursor(t *testing.T, path string) (poller.Cursor, bool) {
	t.Helper()
	fs, err := poller.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	c, ok, err := fs.Load(t.Context(), "crm", "Contact")
	if err != nil {
		t.Fatal(err)
	}
	return c, ok
}

func TestPagesIntoEnvelopesAndCheckpoint(t *testing.T) {
	o := newOrg(t)
	o.add(0, 25)
	file := filepath.Join(t.TempDir(), "cursors.json")
	run := pollertest.Start(t, salesforce.Register, sourceYAML(o, file), nil)
	want := o.wantIDs()
	pollertest.WaitFor(t, "all 25 contacts", func() bool { return pollertest.HasAll(run.Sink, want) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	envs, counts := pollertest.Envelopes(t, run.Sink)
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
	if len(counts) != 25 {
		t.Fatalf("%d distinct events, want 25", len(counts))
	}
	if _, _, q := o.stats(); len(q) == 0 || !strings.Contains(q[0], "WHERE SystemModstamp >= 1970-01-01T00:00:00Z") {
		t.Fatalf("first query %q", q)
	}
	e := envs[0]
	var data struct {
		Attributes struct{ Type string } `json:"attributes"`
		ID         string                `json:"Id"`
		AccountID  string                `json:"AccountId"`
	}
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	if e.Source != "salesforce" || e.Type != "contact.created" || data.Attributes.Type != "Contact" || e.AccountID != data.AccountID || e.Key != "salesforce:"+data.AccountID {
		t.Fatalf("envelope %+v (data %+v)", e, data)
	}
	if !strings.HasPrefix(e.ID, "salesforce:Contact:"+data.ID+":") {
		t.Fatalf("event id %q does not carry the record id", e.ID)
	}
	c, ok := loadCursor(t, file)
	last := sfID("003", 24)
	if !ok || c.ID != last || !c.Time.Equal(base.Add(12*time.Second)) {
		t.Fatalf("cursor %+v %v, want %s at +12s", c, ok, last)
	}
}

func TestRestartResumesFromTheCursorWithoutAGap(t *testing.T) {
	o := newOrg(t)
	o.add(0, 24) // the last second, +11s, holds contacts 22 and 23
	file := filepath.Join(t.TempDir(), "cursors.json")
	run := pollertest.Start(t, salesforce.Register, sourceYAML(o, file), nil)
	first := o.wantIDs()
	pollertest.WaitFor(t, "first run", func() bool { return pollertest.HasAll(run.Sink, first) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	cur, ok := loadCursor(t, file)
	if !ok || cur.ID != sfID("003", 23) {
		t.Fatalf("cursor after the first run %+v", cur)
	}
	// While stopped: a record lands in the cursor's own second with an ID
	// that sorts before the cursor's (a late commit), others after it.
	o.mu.Lock()
	tie := &contact{ID: sfID("003", 1) + "x", Account: sfID("001", 1), Last: "Tie", Created: base, Stamp: cur.Time}
	o.contacts[tie.ID] = tie
	o.mu.Unlock()
	o.add(24, 6)
	run2 := pollertest.Start(t, salesforce.Register, sourceYAML(o, file), nil)
	all := o.wantIDs()
	var fresh []string
	for id := range all {
		if !first[id] {
			fresh = append(fresh, id)
		}
	}
	pollertest.WaitFor(t, "the records added while stopped", func() bool { return pollertest.HasAll(run2.Sink, all) || pollertest.HasAll(run2.Sink, setOf(fresh)) })
	if err := run2.Stop(t); err != nil {
		t.Fatal(err)
	}
	_, _, q := o.stats()
	if !slices.ContainsFunc(q, func(s string) bool { return strings.Contains(s, ">= 2026-11-02T09:00:11Z") }) {
		t.Fatalf("second run did not query from the cursor's second: %q", q)
	}
	// Only the cursor's second may be read again (and the last record not
	// even that), nothing older.
	for id := range run2.Sink.IDs() {
		if first[id] && id != eventID(contact{ID: sfID("003", 22), Stamp: cur.Time}) {
			t.Errorf("%s re-delivered after the restart", id)
		}
	}
}

func setOf(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func TestExpiredSessionTakesANewToken(t *testing.T) {
	o := newOrg(t)
	o.add(0, 25)
	o.onPage = func(page int) {
		if page == 1 {
			o.expireSessions()
		}
	}
	run := pollertest.Start(t, salesforce.Register, sourceYAML(o, filepath.Join(t.TempDir(), "c.json")), nil)
	want := o.wantIDs()
	pollertest.WaitFor(t, "all contacts across the expiry", func() bool { return pollertest.HasAll(run.Sink, want) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	issued, unauth, _ := o.stats()
	if issued != 2 || unauth != 1 {
		t.Fatalf("tokens issued %d, 401s %d; want 2 and 1", issued, unauth)
	}
}

func TestRecordsModifiedDuringAPollAreNotSkipped(t *testing.T) {
	o := newOrg(t)
	o.add(0, 30)
	o.onPage = func(page int) {
		if page == 1 { // one record already read, one not yet
			o.touch(3, base.Add(time.Hour))
			o.touch(17, base.Add(time.Hour))
		}
	}
	before := o.wantIDs()
	run := pollertest.Start(t, salesforce.Register, sourceYAML(o, filepath.Join(t.TempDir(), "c.json")), nil)
	edits := map[string]bool{}
	for _, n := range []int{3, 17} {
		edits[eventID(contact{ID: sfID("003", n), Stamp: base.Add(time.Hour)})] = true
	}
	pollertest.WaitFor(t, "the edits made during the first poll", func() bool { return pollertest.HasAll(run.Sink, edits) })
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
	// The first query's snapshot still had both old versions.
	if !pollertest.HasAll(run.Sink, before) {
		t.Fatal("records of the first poll missing")
	}
}

func TestCheckpointStaysBehindFailedAcks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failFrom int // sink call from which writes fail
	}{
		{"nothing acked", 1},
		{"some acked then the sink fails", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrg(t)
			o.add(0, 40)
			sink := pollertest.FailingSink(tc.failFrom)
			file := filepath.Join(t.TempDir(), "c.json")
			run := pollertest.Start(t, salesforce.Register, sourceYAML(o, file), sink)
			if err := run.Wait(t); err == nil {
				t.Fatal("pipeline with a failing sink and no dead letter ended without error")
			}
			c, ok := loadCursor(t, file)
			if tc.failFrom == 1 && ok {
				t.Fatalf("cursor saved (%+v) though nothing was written", c)
			}
			if !ok {
				return
			}
			// Whatever was checkpointed was written: no gap on restart.
			written := sink.IDs()
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, ct := range o.contacts {
				if !(poller.Cursor{Time: ct.Stamp, ID: ct.ID}).After(c) && !written[eventID(*ct)] {
					t.Errorf("cursor %+v passed %s, which was never written", c, ct.ID)
				}
			}
		})
	}
}

func TestClientAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		header    map[string]string
		wantErr   string // "", "permanent", "retry"
		wantPause bool
	}{
		{"usage fine", 200, `{"totalSize":0,"done":true,"records":[]}`, map[string]string{"Sforce-Limit-Info": "api-usage=18/15000"}, "", false},
		{"usage over max_api_usage", 200, `{"totalSize":0,"done":true,"records":[]}`, map[string]string{"Sforce-Limit-Info": "api-usage=14500/15000"}, "", true},
		{"daily limit exceeded", 403, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, nil, "retry", false},
		{"malformed query", 400, `[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]`, nil, "permanent", false},
		{"server error", 503, `[{"message":"unavailable","errorCode":"SERVER_UNAVAILABLE"}]`, nil, "transient", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","instance_url":"x"}`))
			})
			mux.HandleFunc("GET /services/data/v60.0/query", func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			cfg := fetchConfig(srv.URL)
			page, err := salesforce.FetchOnce(t.Context(), cfg, poller.Query{Object: "Contact", Since: base})
			switch tc.wantErr {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "permanent":
				if !pipeline.IsPermanent(err) {
					t.Fatalf("err %v, want permanent", err)
				}
			case "retry":
				if _, ok := errors.AsType[*poller.RetryAfterError](err); !ok {
					t.Fatalf("err %v, want a retry-after", err)
				}
			default:
				if err == nil || pipeline.IsPermanent(err) {
					t.Fatalf("err %v, want a transient error", err)
				}
			}
			if (page.Pause > 0) != tc.wantPause {
				t.Fatalf("pause %s, want pause %v", page.Pause, tc.wantPause)
			}
		})
	}
}

func TestJWTBearerGrant(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	var claims map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/services/oauth2/token" {
			parts := strings.Split(r.PostForm.Get("assertion"), ".")
			if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || len(parts) != 3 {
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"invalid assertion"}`))
				return
			}
			signed := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, signed[:], sig); err != nil {
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"invalid signature"}`))
				return
			}
			body, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(body, &claims)
			_, _ = w.Write([]byte(`{"access_token":"00DRM!jwt","scope":"api","instance_url":"x","id":"x","token_type":"Bearer"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer 00DRM!jwt" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`))
			return
		}
		_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	}))
	defer srv.Close()
	cfg := salesforce.Config{}
	cfg.SetDefaults()
	cfg.InstanceURL = srv.URL
	cfg.Objects = []salesforce.Object{{Name: "Contact"}}
	cfg.Auth.Grant, cfg.Auth.ClientID, cfg.Auth.Username, cfg.Auth.PrivateKey = "jwt_bearer", "3MVG9-consumer-key", "integration@acme.com", pemKey
	cfg.Checkpoint.File = &poller.FileCheckpoint{Path: filepath.Join(t.TempDir(), "c.json")}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := salesforce.FetchOnce(t.Context(), cfg, poller.Query{Object: "Contact", Since: base}); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != "3MVG9-consumer-key" || claims["sub"] != "integration@acme.com" || claims["aud"] != "https://login.salesforce.com" {
		t.Fatalf("JWT claims %v", claims)
	}
}

func TestIncludeDeletedReadsQueryAll(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","token_type":"Bearer","instance_url":"x"}`))
	})
	mux.HandleFunc("GET /services/data/v60.0/queryAll", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003RM000000DELAAA"},"Id":"003RM000000DELAAA","AccountId":null,"IsDeleted":true,"CreatedDate":"2026-11-01T08:00:00.000+0000","LastModifiedDate":"2026-11-02T09:00:00.000+0000","SystemModstamp":"2026-11-02T09:00:00.000+0000"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := fetchConfig(srv.URL)
	cfg.IncludeDeleted = true
	page, err := salesforce.FetchOnce(t.Context(), cfg, poller.Query{Object: "Contact", Since: base})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].Type != "contact.deleted" || page.Records[0].Key != "" || !page.Records[0].Stamp.Equal(base) {
		t.Fatalf("records %+v", page.Records)
	}
}

// A nextRecordsUrl is a path on the instance: one that names another host
// (user info, a scheme-relative or absolute URL, a host suffix) must not
// get the bearer token, whether it comes in a page or from a saved cursor.
func TestNextRecordsURLStaysOnTheInstance(t *testing.T) {
	var stolen sync.Map // Authorization headers the other host saw
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Store(r.Header.Get("Authorization"), true)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
	}))
	defer evil.Close()
	evilHost := strings.TrimPrefix(evil.URL, "http://")
	for _, tc := range []struct {
		name, next string
		ok         bool
	}{
		{"a path", "/services/data/v60.0/query/01gRM-2000", true},
		{"user info", "@" + evilHost + "/services/data/v60.0/query/01gRM-2000", false},
		{"scheme-relative", "//" + evilHost + "/x", false},
		{"absolute URL", evil.URL + "/x", false},
		{"host suffix", ".evil.example/x", false},
		{"port", ":1/x", false},
		{"backslash", "/\\" + evilHost + "/x", false},
		{"not a path", "services/data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var served atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("POST /services/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"tok-` + tc.name + `","token_type":"Bearer"}`))
			})
			mux.HandleFunc("GET /services/data/v60.0/query", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				next, _ := json.Marshal(tc.next)
				_, _ = fmt.Fprintf(w, `{"totalSize":1,"done":false,"nextRecordsUrl":%s,"records":[]}`, next)
			})
			mux.HandleFunc("GET /services/data/v60.0/query/{loc}", func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"totalSize":0,"done":true,"records":[]}`))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			cfg := fetchConfig(srv.URL)
			// From a page: the first query answers with the link.
			page, err := salesforce.FetchOnce(t.Context(), cfg, poller.Query{Object: "Contact", Since: base})
			if tc.ok != (err == nil) {
				t.Fatalf("first page with nextRecordsUrl %q: err %v, want ok=%v", tc.next, err, tc.ok)
			}
			if err != nil && !pipeline.IsPermanent(err) {
				t.Errorf("err %v, want permanent", err)
			}
			if tc.ok && page.Next != tc.next {
				t.Errorf("next %q, want %q", page.Next, tc.next)
			}
			// From a saved cursor: the token is followed as is.
			_, err = salesforce.FetchOnce(t.Context(), cfg, poller.Query{Object: "Contact", Since: base, Token: tc.next})
			if tc.ok != (err == nil) {
				t.Fatalf("following %q: err %v, want ok=%v", tc.next, err, tc.ok)
			}
			if tc.ok && served.Load() != 1 {
				t.Errorf("the instance served %d next pages, want 1", served.Load())
			}
			if _, ok := stolen.Load("Bearer tok-" + tc.name); ok {
				t.Fatalf("the bearer token was sent to %s", evilHost)
			}
		})
	}
}
