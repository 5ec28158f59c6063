package vendorreplay

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/greenhouse"
	"github.com/sluicehq/sluice/sources/hubspot"
	"github.com/sluicehq/sluice/sources/lever"
	"github.com/sluicehq/sluice/sources/salesforce"
)

func loadRecorded(t *testing.T) *Set {
	t.Helper()
	set, err := Load(Recorded())
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestRecordedSet pins the counts recorded/README.md documents, so the
// README and the demo's expectations cannot drift from the files.
func TestRecordedSet(t *testing.T) {
	set := loadRecorded(t)
	for _, c := range []struct {
		vendor  string
		objects string
		records int
	}{
		{Salesforce, "Contact Lead Opportunity Task", 30},
		{HubSpot, "companies contacts deals", 20},
		{Greenhouse, "applications candidates jobs", 15},
		{Lever, "opportunities", 6},
	} {
		if got := strings.Join(set.Objects(c.vendor), " "); got != c.objects || set.Records(c.vendor) != c.records {
			t.Errorf("%s: objects %q with %d records, want %q with %d", c.vendor, got, set.Records(c.vendor), c.objects, c.records)
		}
	}
	if set.Deliveries(SendGrid) != 3 || set.Deliveries(Mailgun) != 6 || set.Deliveries(SES) != 6 || set.WebhookEvents() != 23 {
		t.Errorf("deliveries sendgrid %d mailgun %d ses %d, %d events; want 2, 5, 6 and 21",
			set.Deliveries(SendGrid), set.Deliveries(Mailgun), set.Deliveries(SES), set.WebhookEvents())
	}
}

func TestLoadNamesTheBadRecord(t *testing.T) {
	_, err := Load(fstest.MapFS{"lever/opportunities.json": {Data: []byte(`[{"id":"a","updatedAt":1},{"id":"b"}]`)}})
	if err == nil || !strings.Contains(err.Error(), "lever/opportunities.json record 1") {
		t.Fatalf("err %v, want it to name lever/opportunities.json record 1", err)
	}
}

// wantIDs are the event ids a poller reading every recorded record of a
// vendor emits.
func wantIDs(set *Set, vendor string) map[string]bool {
	ids := map[string]bool{}
	for object, recs := range set.objects[vendor] {
		for _, r := range recs {
			ids[poller.EventID(vendor, object, r.id, r.stamp)] = true
		}
	}
	return ids
}

// TestConnectorsReadEveryRecordOnce runs each real polling connector
// against the replay: every recorded record arrives exactly once across
// several pages, the vendor's auth and rate-limit paths run, and a
// restart from the saved checkpoint reads nothing again.
func TestConnectorsReadEveryRecordOnce(t *testing.T) {
	set := loadRecorded(t)
	creds := DemoCredentials()
	for _, c := range []struct {
		vendor   string
		register func(*pipeline.Registry)
		yaml     string // %[1]s: the server URL, %[2]s: the checkpoint file
		check    func(VendorStats) error
	}{
		{Salesforce, func(r *pipeline.Registry) { salesforce.Register(r) }, `  salesforce:
    instance_url: %[1]s/salesforce
    api_version: v59.0
    auth: {grant: client_credentials, client_id: ` + creds.SalesforceClientID + `, client_secret: ` + creds.SalesforceClientSecret + `}
    objects: [{name: Contact, fields: [Id, Email, AccountId, CreatedDate, LastModifiedDate, IsDeleted]}, {name: Lead}, {name: Opportunity}, {name: Task}]
    include_deleted: true`, func(s VendorStats) error {
			if s.Unauthorized == 0 {
				return fmt.Errorf("no token expired: the refresh on 401 did not run")
			}
			return nil
		}},
		{HubSpot, func(r *pipeline.Registry) { hubspot.Register(r) }, `  hubspot:
    base_url: %[1]s/hubspot
    token: ` + creds.HubSpotToken + `
    objects: [{name: contacts, properties: [email]}, {name: companies}, {name: deals}]
    page_size: 3`, func(s VendorStats) error {
			if s.Throttled == 0 {
				return fmt.Errorf("no search was answered 429")
			}
			return nil
		}},
		{Greenhouse, func(r *pipeline.Registry) { greenhouse.Register(r) }, `  greenhouse:
    base_url: %[1]s/greenhouse/v1
    api_key: ` + creds.GreenhouseAPIKey + `
    per_page: 2`, nil},
		{Lever, func(r *pipeline.Registry) { lever.Register(r) }, `  lever:
    base_url: %[1]s/lever/v1
    api_key: ` + creds.LeverAPIKey + `
    limit: 2`, nil},
	} {
		t.Run(c.vendor, func(t *testing.T) {
			api := NewAPI(set)
			srv := httptest.NewServer(api)
			defer srv.Close()
			file := filepath.Join(t.TempDir(), "checkpoint.json")
			yaml := fmt.Sprintf(c.yaml, srv.URL) + fmt.Sprintf(`
    interval: 50ms
    checkpoint_interval: 20ms
    checkpoint: {key: replay, file: {path: %q}}`, file)
			want := wantIDs(set, c.vendor)
			run := pollertest.Start(t, c.register, yaml, nil)
			pollertest.WaitFor(t, "every recorded record", func() bool { return len(run.Sink.IDs()) >= len(want) })
			time.Sleep(200 * time.Millisecond) // a few more polls: they must bring nothing new
			if err := run.Stop(t); err != nil {
				t.Fatal(err)
			}
			_, counts := pollertest.Envelopes(t, run.Sink)
			for id := range want {
				if counts[id] != 1 {
					t.Errorf("%s written %d times, want once", id, counts[id])
				}
			}
			if len(counts) != len(want) {
				t.Errorf("%d distinct events, want %d", len(counts), len(want))
			}
			st := api.Stats()[c.vendor]
			if st.Pages <= len(set.Objects(c.vendor)) {
				t.Errorf("%d pages for %d objects: the paging path did not run", st.Pages, len(set.Objects(c.vendor)))
			}
			if c.check != nil {
				if err := c.check(st); err != nil {
					t.Error(err)
				}
			}
			served := st.Records
			again := pollertest.Start(t, c.register, yaml, nil)
			pollertest.WaitFor(t, "polls after the restart", func() bool { return api.Stats()[c.vendor].Pages >= st.Pages+2*len(set.Objects(c.vendor)) })
			if err := again.Stop(t); err != nil {
				t.Fatal(err)
			}
			if n := len(again.Sink.IDs()); n != 0 {
				t.Errorf("%d events after a restart from the checkpoint, want 0", n)
			}
			// Each poll re-reads the records at its cursor (and within
			// the vendor's overlap), dropped as seen; polls from an ignored
			// checkpoint would re-read every record, twice over.
			if again := api.Stats()[c.vendor].Records - served; again >= set.Records(c.vendor) {
				t.Errorf("%d records served again after the restart, in about two polls of %d records: the checkpoint was not used", again, set.Records(c.vendor))
			}
		})
	}
}

// TestAPIRefusals: wrong credentials and unknown objects get each vendor's
// documented status and error shape.
func TestAPIRefusals(t *testing.T) {
	srv := httptest.NewServer(NewAPI(loadRecorded(t)))
	defer srv.Close()
	creds := DemoCredentials()
	for _, c := range []struct {
		name, method, path, body, user, bearer string
		status                                 int
		want                                   string
	}{
		{"salesforce bad client", "POST", "/salesforce/services/oauth2/token", "grant_type=client_credentials&client_id=x&client_secret=y", "", "", 400, `"invalid_client"`},
		{"salesforce no session", "GET", "/salesforce/services/data/v59.0/query?q=SELECT+Id+FROM+Contact", "", "", "nope", 401, `"INVALID_SESSION_ID"`},
		{"hubspot bad token", "POST", "/hubspot/crm/v3/objects/contacts/search", `{}`, "", "nope", 401, `"INVALID_AUTHENTICATION"`},
		{"hubspot unknown object", "POST", "/hubspot/crm/v3/objects/widgets/search", `{}`, "", creds.HubSpotToken, 400, `"OBJECT_NOT_FOUND"`},
		{"hubspot other filter", "POST", "/hubspot/crm/v3/objects/deals/search", `{"filterGroups":[{"filters":[{"propertyName":"amount","operator":"GT","value":"1"}]}]}`, "", creds.HubSpotToken, 400, `"VALIDATION_ERROR"`},
		{"greenhouse bad key", "GET", "/greenhouse/v1/candidates", "", "nope", "", 401, `Invalid Basic Auth credentials`},
		{"greenhouse bad time", "GET", "/greenhouse/v1/candidates?updated_after=yesterday", "", creds.GreenhouseAPIKey, "", 422, `updated_after`},
		{"lever bad key", "GET", "/lever/v1/opportunities", "", "nope", "", 401, `"Unauthorized"`},
		{"lever bad offset", "GET", "/lever/v1/opportunities?offset=!!", "", creds.LeverAPIKey, "", 400, `invalid offset`},
		{"hubspot negative after", "POST", "/hubspot/crm/v3/objects/deals/search", `{"after":"-3"}`, "", creds.HubSpotToken, 400, `non-negative`},
		{"lever offset past the end", "GET", "/lever/v1/opportunities?offset=" + base64.RawURLEncoding.EncodeToString([]byte("9223372036854775807")), "", creds.LeverAPIKey, "", 200, `"data":[]`},
		{"greenhouse page past the end", "GET", "/greenhouse/v1/jobs?page=9223372036854775807&per_page=500", "", creds.GreenhouseAPIKey, "", 200, `[]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if c.method == "POST" && strings.HasPrefix(c.path, "/salesforce") {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if c.user != "" {
				req.SetBasicAuth(c.user, "")
			}
			if c.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+c.bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, b, c.status, c.want)
			}
		})
	}
}
