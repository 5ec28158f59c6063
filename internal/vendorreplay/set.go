package vendorreplay

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

//go:embed recorded
var recorded embed.FS

// Recorded is the recorded set compiled into the binary.
func Recorded() fs.FS {
	sub, err := fs.Sub(recorded, "recorded")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return sub
}

// The vendors a Set holds records or deliveries for.
const (
	Salesforce = "salesforce"
	HubSpot    = "hubspot"
	Greenhouse = "greenhouse"
	Lever      = "lever"
	SendGrid   = "sendgrid"
	Mailgun    = "mailgun"
	SES        = "ses"
)

// Set is a recorded set: each polled vendor's records by object, and each
// webhook provider's request bodies in delivery order.
type Set struct {
	// objects[vendor][object] holds the records, in file order.
	objects map[string]map[string][]record
	// deliveries[provider] holds one request body per file, by file name.
	deliveries map[string][]delivery
}

type record struct {
	id      string
	stamp   time.Time
	deleted bool
	raw     json.RawMessage
}

type delivery struct {
	name string
	body []byte
}

// stampOf names, per polled vendor and object, the field each vendor
// filters and pages by; "" is the vendor's default.
var stampOf = map[string]map[string]string{
	Salesforce: {"": "SystemModstamp"},
	HubSpot:    {"contacts": "properties.lastmodifieddate", "": "properties.hs_lastmodifieddate"},
	Greenhouse: {"applications": "last_activity_at", "": "updated_at"},
	Lever:      {"": "updatedAt"},
}

// Load reads a recorded set laid out as recorded/README.md describes:
// <vendor>/<object>.json arrays of records for the polled vendors, and
// <provider>/*.json request bodies for the webhook providers. Every record
// must carry the ID and modification stamp its vendor pages by.
func Load(fsys fs.FS) (*Set, error) {
	s := &Set{objects: map[string]map[string][]record{}, deliveries: map[string][]delivery{}}
	for vendor := range stampOf {
		files, err := fs.Glob(fsys, vendor+"/*.json")
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			object := strings.TrimSuffix(path.Base(f), ".json")
			recs, err := loadRecords(fsys, f, vendor, object)
			if err != nil {
				return nil, err
			}
			if s.objects[vendor] == nil {
				s.objects[vendor] = map[string][]record{}
			}
			s.objects[vendor][object] = recs
		}
	}
	for _, provider := range []string{SendGrid, Mailgun, SES} {
		files, err := fs.Glob(fsys, provider+"/*.json")
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				return nil, err
			}
			if !json.Valid(b) {
				return nil, fmt.Errorf("recorded set: %s is not valid JSON", f)
			}
			s.deliveries[provider] = append(s.deliveries[provider], delivery{name: f, body: b})
		}
	}
	return s, nil
}

func loadRecords(fsys fs.FS, file, vendor, object string) ([]record, error) {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("recorded set: %s: want a JSON array of records: %w", file, err)
	}
	field := stampOf[vendor][object]
	if field == "" {
		field = stampOf[vendor][""]
	}
	idField := "id"
	if vendor == Salesforce {
		idField = "Id"
	}
	recs := make([]record, 0, len(raws))
	for i, raw := range raws {
		id := gjson.GetBytes(raw, idField).String()
		stamp, ok := parseStamp(gjson.GetBytes(raw, field))
		if id == "" || !ok {
			return nil, fmt.Errorf("recorded set: %s record %d: want %s and a %s timestamp", file, i, idField, field)
		}
		recs = append(recs, record{id: id, stamp: stamp, deleted: gjson.GetBytes(raw, "IsDeleted").Bool(), raw: raw})
	}
	return recs, nil
}

// parseStamp reads the timestamp shapes the vendors use: RFC 3339,
// Salesforce's +0000 offsets, and epoch milliseconds as number or string.
func parseStamp(v gjson.Result) (time.Time, bool) {
	if v.Type == gjson.Number {
		return time.UnixMilli(v.Int()).UTC(), true
	}
	s := v.String()
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	return time.Time{}, false
}

// Objects lists a polled vendor's recorded objects, sorted.
func (s *Set) Objects(vendor string) []string {
	var names []string
	for o := range s.objects[vendor] {
		names = append(names, o)
	}
	slices.Sort(names)
	return names
}

// Records is how many records a polled vendor holds across its objects,
// deleted ones included: what a poller that reads deletions emits.
func (s *Set) Records(vendor string) int {
	n := 0
	for _, recs := range s.objects[vendor] {
		n += len(recs)
	}
	return n
}

// Deliveries is how many request bodies are recorded for a provider.
func (s *Set) Deliveries(provider string) int { return len(s.deliveries[provider]) }

// WebhookEvents is how many events the webhooks source emits for the
// recorded deliveries: each SendGrid event, each Mailgun delivery and each
// SNS Notification; subscription confirmations carry none.
func (s *Set) WebhookEvents() int {
	n := 0
	for _, d := range s.deliveries[SendGrid] {
		n += len(gjson.ParseBytes(d.body).Array())
	}
	n += len(s.deliveries[Mailgun])
	for _, d := range s.deliveries[SES] {
		if gjson.GetBytes(d.body, "Type").String() == "Notification" {
			n++
		}
	}
	return n
}
