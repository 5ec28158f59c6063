package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// recordedDir holds the vendor payloads sluice demo replays
// (internal/vendorreplay/recorded/README.md).
const recordedDir = "../../internal/vendorreplay/recorded"

// recordedFiles are the polled objects of the recorded set: the file, the
// source and the type prefix its connector gives the records.
var recordedFiles = []struct{ source, file, prefix string }{
	{"salesforce", "salesforce/Contact.json", "contact"},
	{"salesforce", "salesforce/Lead.json", "lead"},
	{"salesforce", "salesforce/Opportunity.json", "opportunity"},
	{"salesforce", "salesforce/Task.json", "task"},
	{"hubspot", "hubspot/contacts.json", "contact"},
	{"hubspot", "hubspot/companies.json", "company"},
	{"hubspot", "hubspot/deals.json", "deal"},
	{"greenhouse", "greenhouse/candidates.json", "candidate"},
	{"greenhouse", "greenhouse/applications.json", "application"},
	{"greenhouse", "greenhouse/jobs.json", "job"},
	{"lever", "lever/opportunities.json", "opportunity"},
}

// recordedRecords reads one recorded file: its records, as the vendor's
// API answers them.
func recordedRecords(tb testing.TB, file string) []json.RawMessage {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(recordedDir, filepath.FromSlash(file)))
	if err != nil {
		tb.Fatal(err)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(raw, &recs); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	return recs
}

// wrapRecorded wraps one record in the envelope its connector writes
// (sources/salesforce, hubspot, greenhouse, lever through internal/poller):
// the type is the object's prefix and created, updated or deleted; the
// stamp, key and account are the connector's.
func wrapRecorded(tb testing.TB, source, prefix string, data json.RawMessage) *pipeline.Event {
	tb.Helper()
	r := gjson.ParseBytes(data)
	var id, stamp, key, account string
	verb := "updated"
	switch source {
	case "salesforce":
		id, stamp, key, account = r.Get("Id").Str, r.Get("SystemModstamp").Str, r.Get("Id").Str, r.Get("AccountId").Str
		if prefix == "account" {
			account = id
		}
		switch {
		case r.Get("IsDeleted").Bool():
			verb = "deleted"
		case r.Get("CreatedDate").Str != "" && r.Get("CreatedDate").Str == r.Get("LastModifiedDate").Str:
			verb = "created"
		}
	case "hubspot":
		id, stamp, key = r.Get("id").Str, r.Get("updatedAt").Str, r.Get("id").Str
		switch prefix {
		case "contact":
			account = r.Get("properties.associatedcompanyid").Str
		case "company":
			account = id
		}
		switch {
		case r.Get("archived").Bool():
			verb = "deleted"
		case r.Get("createdAt").Str == r.Get("updatedAt").Str:
			verb = "created"
		}
	case "greenhouse":
		id, stamp, key = r.Get("id").String(), r.Get("updated_at").Str, r.Get("id").String()
		if prefix == "application" {
			stamp, key = r.Get("last_activity_at").Str, r.Get("candidate_id").String()
		}
		if r.Get("created_at").Str == stamp {
			verb = "created"
		}
	case "lever":
		id, key = r.Get("id").Str, r.Get("contact").Str
		stamp = time.UnixMilli(r.Get("updatedAt").Int()).UTC().Format(time.RFC3339Nano)
		if r.Get("createdAt").Int() == r.Get("updatedAt").Int() {
			verb = "created"
		}
	default:
		tb.Fatalf("no connector for %s", source)
	}
	t, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.000-0700", stamp)
	}
	if id == "" || err != nil {
		tb.Fatalf("%s %s record without id or stamp: %s", source, prefix, data)
	}
	occurred := t.UTC().Format(time.RFC3339Nano)
	body, err := json.Marshal(pollertest.Envelope{
		ID: source + ":" + prefix + ":" + id + ":" + occurred, Source: source, Type: prefix + "." + verb,
		AccountID: account, OccurredAt: occurred, Key: source + ":" + key, Data: data,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &pipeline.Event{ID: source + "-" + strconv.Itoa(len(body)), Payload: body, Body: body, Time: t}
}

// recordedEvents wraps every record of the recorded set.
func recordedEvents(tb testing.TB) []*pipeline.Event {
	tb.Helper()
	var evs []*pipeline.Event
	for _, f := range recordedFiles {
		for _, rec := range recordedRecords(tb, f.file) {
			evs = append(evs, wrapRecorded(tb, f.source, f.prefix, rec))
		}
	}
	return evs
}

// recordedByID wraps the record of file whose id field is id.
func recordedByID(tb testing.TB, file, id string) *pipeline.Event {
	tb.Helper()
	for _, f := range recordedFiles {
		if f.file != file {
			continue
		}
		field := "id"
		if f.source == "salesforce" {
			field = "Id"
		}
		for _, rec := range recordedRecords(tb, file) {
			if gjson.GetBytes(rec, field).String() == id {
				return wrapRecorded(tb, f.source, f.prefix, rec)
			}
		}
		tb.Fatalf("%s: no record %s", file, id)
	}
	tb.Fatalf("%s is not a recorded file", file)
	return nil
}
