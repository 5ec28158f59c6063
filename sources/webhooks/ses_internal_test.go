package webhooks

import (
	"testing"
	"time"
)

// TestSESEventTimes: each SES event takes the time of what happened (the
// open, the click, the bounce…), not the time the mail was sent.
func TestSESEventTimes(t *testing.T) {
	const sent = `"mail":{"timestamp":"2026-11-18T17:25:00.000Z","messageId":"m1","destination":["ada@example.com"]}`
	for _, c := range []struct {
		name, message, want, recipient string
	}{
		{"delivery", `{"eventType":"Delivery",` + sent + `,"delivery":{"timestamp":"2026-11-18T17:25:02.000Z","recipients":["ada@example.com"]}}`, "2026-11-18T17:25:02Z", "ada@example.com"},
		{"bounce", `{"eventType":"Bounce",` + sent + `,"bounce":{"timestamp":"2026-11-18T17:25:03.000Z","bouncedRecipients":[{"emailAddress":"b@example.com"}]}}`, "2026-11-18T17:25:03Z", "b@example.com"},
		{"complaint", `{"eventType":"Complaint",` + sent + `,"complaint":{"timestamp":"2026-11-19T08:00:00.000Z","complainedRecipients":[{"emailAddress":"c@example.com"}]}}`, "2026-11-19T08:00:00Z", "c@example.com"},
		{"delay", `{"eventType":"DeliveryDelay",` + sent + `,"deliveryDelay":{"timestamp":"2026-11-18T18:00:00.000Z","delayedRecipients":[{"emailAddress":"d@example.com"}]}}`, "2026-11-18T18:00:00Z", "d@example.com"},
		{"open", `{"eventType":"Open",` + sent + `,"open":{"timestamp":"2026-11-20T09:02:00.000Z","ipAddress":"192.0.2.1"}}`, "2026-11-20T09:02:00Z", "ada@example.com"},
		{"click", `{"eventType":"Click",` + sent + `,"click":{"timestamp":"2026-11-20T09:03:00.000Z","link":"https://example.com"}}`, "2026-11-20T09:03:00Z", "ada@example.com"},
		{"subscription", `{"eventType":"Subscription",` + sent + `,"subscription":{"timestamp":"2026-11-20T10:00:00.000Z"}}`, "2026-11-20T10:00:00Z", "ada@example.com"},
		{"send: the mail's time", `{"eventType":"Send",` + sent + `,"send":{}}`, "2026-11-18T17:25:00Z", "ada@example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ve, err := parseSESEvent(&snsMessage{MessageID: "id", Message: c.message, Timestamp: "2026-11-21T00:00:00.000Z"})
			if err != nil {
				t.Fatal(err)
			}
			if got := ve.time.Format(time.RFC3339Nano); got != c.want || ve.recipient != c.recipient {
				t.Fatalf("time %s recipient %s, want %s and %s", got, ve.recipient, c.want, c.recipient)
			}
		})
	}
}
