package webhooks

import (
	"encoding/json"
	"testing"
)

// checkWrap asserts that a parsed vendor event wraps into a valid JSON
// envelope whose data is the vendor bytes.
func checkWrap(t *testing.T, provider string, ve vendorEvent) {
	ev := wrap(provider, "acct", canonicalType(provider, ve.vendor), ve)
	var env struct {
		ID   string          `json:"id"`
		Key  string          `json:"key"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(ev.Payload, &env); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%s", err, ev.Payload)
	}
	if env.ID != ev.ID || env.Key != string(ev.Key) || ev.ID == "" {
		t.Fatalf("envelope id %q key %q, event id %q key %q", env.ID, env.Key, ev.ID, ev.Key)
	}
}

func FuzzParseSendGrid(f *testing.F) {
	f.Add([]byte(`[{"email":"a@b.c","timestamp":1700000000,"event":"open","sg_event_id":"x"}]`))
	f.Add([]byte(`[{"email":"a@b.c","timestamp":1.5e9,"event":"bounce"}, {"event":"x","sg_event_id":1}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ves, err := parseSendGrid(body)
		if err != nil {
			return
		}
		for _, ve := range ves {
			checkWrap(t, "sendgrid", ve)
		}
	})
}

func FuzzParseMailgun(f *testing.F) {
	f.Add([]byte(`{"signature":{"timestamp":"1","token":"t","signature":"s"},"event-data":{"event":"opened","id":"i","timestamp":1.25,"recipient":"a@b.c"}}`))
	f.Add([]byte(`{"signature":null,"event-data":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, ve, err := parseMailgun(body)
		if err != nil {
			return
		}
		checkWrap(t, "mailgun", ve)
	})
}

func FuzzParseSNS(f *testing.F) {
	f.Add([]byte(`{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Timestamp":"2024-01-01T00:00:00.000Z","Message":"{\"eventType\":\"Bounce\",\"mail\":{\"destination\":[\"a@b.c\"]},\"bounce\":{\"timestamp\":\"2024-01-01T00:00:00Z\",\"bouncedRecipients\":[{\"emailAddress\":\"x@y.z\"}]}}"}`))
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","MessageId":"m","TopicArn":"a","Timestamp":"t","Message":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSNS(body)
		if err != nil {
			return
		}
		_, _ = snsStringToSign(m)
		_, _ = checkSNSURL(m.SigningCertURL, nil)
		ve, err := parseSESEvent(m)
		if err != nil {
			return
		}
		checkWrap(t, "ses", ve)
	})
}
