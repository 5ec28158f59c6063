package poller

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// oldEnvelope and oldPayload are how event wrote its payload before
// internal/envelope owned the envelope, kept as the reference its output
// must match byte for byte.
type oldEnvelope struct {
	ID               string          `json:"id"`
	Source           string          `json:"source"`
	Type             string          `json:"type"`
	AccountID        string          `json:"account_id"`
	OccurredAt       string          `json:"occurred_at"`
	SystemModifiedAt string          `json:"system_modified_at,omitempty"`
	Key              string          `json:"key"`
	Data             json.RawMessage `json:"data"`
}

func oldPayload(o Options, object string, r *Record) []byte {
	id := EventID(o.Vendor, object, r.ID, r.Stamp)
	key := r.Key
	if key == "" {
		key = r.ID
	}
	key = o.Vendor + ":" + key
	stamp := r.Stamp.UTC().Format(time.RFC3339Nano)
	env := oldEnvelope{ID: id, Source: o.Vendor, Type: r.Type, AccountID: r.Account, OccurredAt: stamp, Key: key, Data: r.Data}
	if env.AccountID == "" {
		env.AccountID = o.Account
	}
	if !r.OccurredAt.IsZero() {
		env.OccurredAt, env.SystemModifiedAt = r.OccurredAt.UTC().Format(time.RFC3339Nano), stamp
	}
	payload, err := json.Marshal(env)
	if err != nil {
		env.Data, _ = json.Marshal(string(r.Data))
		payload, _ = json.Marshal(env)
	}
	return payload
}

func TestEventPayloadMatchesOldWriter(t *testing.T) {
	stamp := time.Date(2026, 11, 19, 11, 18, 52, 0, time.FixedZone("x", -7200))
	biz := time.Date(2026, 11, 17, 9, 41, 5, 500, time.UTC)
	cases := []struct {
		name string
		o    Options
		r    Record
	}{
		{"plain", Options{Vendor: "salesforce", Account: "acct_9"}, Record{ID: "003A", Stamp: stamp, Type: "contact.updated", Data: []byte(`{"Id":"003A","Email":"a@b.c"}`)}},
		{"own account, key, occurred_at", Options{Vendor: "salesforce", Account: "acct_9"}, Record{ID: "003B", Stamp: stamp, OccurredAt: biz, Type: "contact.created", Key: "001X", Account: "acct_1", Data: []byte(`{"Id":"003B"}`)}},
		{"data compacted and html-escaped", Options{Vendor: "hubspot"}, Record{ID: "7", Stamp: stamp, Type: "contact.updated", Data: []byte("{ \"a\" : [1, 2],\n \"h\": \"<b>&</b>\", \"u\": \"\u2028\" }")}},
		{"data not json", Options{Vendor: "lever"}, Record{ID: "8", Stamp: stamp, Type: "t", Data: []byte(`{"a":`)}},
		{"data empty and nil", Options{Vendor: "greenhouse"}, Record{ID: "9", Stamp: stamp, Data: []byte{}}},
		{"nil data", Options{Vendor: "greenhouse"}, Record{ID: "10", Stamp: stamp}},
		{"escapes in strings", Options{Vendor: "x<y>", Account: "a&b"}, Record{ID: "\"q\"\xff", Stamp: stamp, Type: "t\x00\t", Key: "é", Data: []byte(`"s"`)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Source{o: c.o}
			r := c.r
			got := s.event("Contact", &r).Payload
			if want := oldPayload(c.o, "Contact", &c.r); !bytes.Equal(got, want) {
				t.Fatalf("payload differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}
