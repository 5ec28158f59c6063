package enrich

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// TestEmailBounceComplaintClick: one payload per provider and case, in
// the shapes SendGrid's Event Webhook, Mailgun's webhooks and SES event
// publishing document, mapped to bounce.kind/reason/code, complaint.kind,
// click.url and the vendor object.
func TestEmailBounceComplaintClick(t *testing.T) {
	const sesMail = `"mail":{"timestamp":"2026-11-18T11:30:05.000Z","source":"outreach@fernhill.example.com","messageId":"010001a1efb0ca0e-413ec1e8-449c-4170-8274-46ce7d9eebd3-000000","destination":["ada@acme-corp.com"]}`
	for _, tc := range []struct {
		name, source, typ, data string
		want                    map[string]string // gjson path in the canonical event → its raw JSON
	}{
		{"sendgrid hard bounce", "sendgrid", "bounce",
			`{"email":"ada@acme-corp.com","timestamp":1772445607,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"bounce","bounce_classification":"Invalid Address","category":["onboarding"],"sg_event_id":"6g4ZI7SA-xmRDv57GoPIPw==","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","reason":"550 5.1.1 The email account that you tried to reach does not exist.","status":"5.1.1","type":"bounce"}`,
			map[string]string{"bounce": `{"kind":"hard","reason":"550 5.1.1 The email account that you tried to reach does not exist.","code":"5.1.1"}`,
				"vendor":      `{"type":"bounce","reason":"550 5.1.1 The email account that you tried to reach does not exist.","status":"5.1.1","bounce_classification":"Invalid Address"}`,
				"occurred_at": `"2026-03-02T10:00:07Z"`}},
		{"sendgrid blocked", "sendgrid", "bounce",
			`{"email":"ada@acme-corp.com","timestamp":1772445607,"event":"bounce","bounce_classification":"Reputation","sg_event_id":"blk-1","sg_message_id":"m2.filter0001","reason":"554 5.7.1 Service unavailable; Client host blocked using bl.example","status":"5.7.1","type":"blocked"}`,
			map[string]string{"bounce.kind": `"blocked"`, "bounce.code": `"5.7.1"`, "vendor.bounce_classification": `"Reputation"`}},
		{"sendgrid click", "sendgrid", "click",
			`{"email":"ada@acme-corp.com","timestamp":1772445607,"event":"click","sg_event_id":"clk-1","sg_message_id":"m3.filter0001","useragent":"Mozilla/5.0","ip":"255.255.255.255","url":"https://www.fernhill.example.com/pricing?utm_source=mail","url_offset":{"index":0,"type":"html"}}`,
			map[string]string{"click": `{"url":"https://www.fernhill.example.com/pricing?utm_source=mail"}`, "bounce": ``, "vendor": `{"url":"https://www.fernhill.example.com/pricing?utm_source=mail"}`}},
		{"sendgrid spam report", "sendgrid", "complaint",
			`{"email":"ada@acme-corp.com","timestamp":1772445607,"event":"spamreport","sg_event_id":"spam-1","sg_message_id":"m4.filter0001"}`,
			map[string]string{"complaint": `{"kind":"abuse"}`, "vendor": ``}},
		{"mailgun permanent failure", "mailgun", "bounce",
			`{"signature":{"timestamp":"1772445607","token":"t","signature":"s"},"event-data":{"event":"failed","id":"G9Bn5sl1TC6nu79C8C0bwg","timestamp":1772445607.318224,"severity":"permanent","reason":"bounce","recipient":"ada@acme-corp.com","log-level":"error","delivery-status":{"attempt-no":1,"code":550,"message":"5.1.1 The email account that you tried to reach does not exist.","description":"","session-seconds":0.2},"message":{"headers":{"message-id":"20261118113005.353ec393cf1bc4bc@mg.fernhill.example.com","subject":"Welcome"}}}}`,
			map[string]string{"bounce": `{"kind":"hard","reason":"5.1.1 The email account that you tried to reach does not exist.","code":"550"}`,
				"vendor":      `{"severity":"permanent","reason":"bounce","delivery_status_code":550,"delivery_status_message":"5.1.1 The email account that you tried to reach does not exist.","delivery_status_description":""}`,
				"occurred_at": `"2026-03-02T10:00:07.318224Z"`}},
		{"mailgun temporary failure", "mailgun", "deferred",
			`{"event-data":{"event":"failed","id":"t1","timestamp":1772445607.5,"severity":"temporary","reason":"generic","recipient":"ada@acme-corp.com","delivery-status":{"code":452,"message":"4.2.2 The email account that you tried to reach is over quota.","description":"mailbox full"},"message":{"headers":{"message-id":"m5@mg"}}}}`,
			map[string]string{"bounce": `{"kind":"soft","reason":"mailbox full","code":"452"}`}},
		{"mailgun enhanced code first", "mailgun", "deferred",
			`{"event-data":{"event":"failed","id":"t2","timestamp":1772445607,"severity":"temporary","reason":"generic","recipient":"ada@acme-corp.com","delivery-status":{"code":452,"enhanced-code":"4.2.2","message":"4.2.2 mailbox full","description":""},"message":{"headers":{"message-id":"m9@mg"}}}}`,
			map[string]string{"bounce": `{"kind":"soft","reason":"4.2.2 mailbox full","code":"4.2.2"}`, "vendor.delivery_status_enhanced_code": `"4.2.2"`}},
		{"mailgun blocked by the provider", "mailgun", "bounce",
			`{"event-data":{"event":"failed","id":"b1","timestamp":1772445607,"severity":"permanent","reason":"espblock","recipient":"ada@acme-corp.com","delivery-status":{"code":605,"message":"Not delivering to previously bounced address"},"message":{"headers":{"message-id":"m6@mg"}}}}`,
			map[string]string{"bounce.kind": `"blocked"`}},
		{"sendgrid deferred", "sendgrid", "deferred",
			`{"email":"ada@acme-corp.com","timestamp":1772445607,"event":"deferred","sg_event_id":"def-1","sg_message_id":"m10.filter0001","response":"400 try again later","attempt":"5"}`,
			map[string]string{"bounce": `{"kind":"soft","reason":"400 try again later","code":null}`, "vendor": `{"response":"400 try again later","attempt":"5"}`}},
		{"ses delivery delay", "ses", "deferred",
			`{"eventType":"DeliveryDelay","deliveryDelay":{"timestamp":"2026-11-18T11:35:00.000Z","delayType":"MailboxFull","expirationTime":"2026-11-19T11:30:05.000Z","delayedRecipients":[{"emailAddress":"ada@acme-corp.com","status":"4.2.2","diagnosticCode":"smtp; 452 4.2.2 Mailbox full"}]},` + sesMail + `}`,
			map[string]string{"bounce": `{"kind":"soft","reason":"smtp; 452 4.2.2 Mailbox full","code":"4.2.2"}`, "vendor": `{"delayType":"MailboxFull","delayStatus":"4.2.2","delayDiagnosticCode":"smtp; 452 4.2.2 Mailbox full"}`}},
		{"mailgun click", "mailgun", "click",
			`{"event-data":{"event":"clicked","id":"c1","timestamp":1772445607,"recipient":"ada@acme-corp.com","url":"https://fernhill.example.com/demo","ip":"50.56.129.169","message":{"headers":{"message-id":"m7@mg"}}}}`,
			map[string]string{"click.url": `"https://fernhill.example.com/demo"`, "vendor.url": `"https://fernhill.example.com/demo"`}},
		{"mailgun complaint", "mailgun", "complaint",
			`{"event-data":{"event":"complained","id":"p1","timestamp":1772445607,"recipient":"ada@acme-corp.com","message":{"headers":{"message-id":"m8@mg"}}}}`,
			map[string]string{"complaint.kind": `"abuse"`}},
		{"ses permanent bounce", "ses", "bounce",
			`{"eventType":"Bounce","bounce":{"feedbackId":"0100017f-bounce","bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"ada@acme-corp.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-11-18T11:30:06.669Z","reportingMTA":"dsn; a8-70.smtp-out.amazonses.com"},` + sesMail + `}`,
			map[string]string{"bounce": `{"kind":"hard","reason":"smtp; 550 5.1.1 user unknown","code":"5.1.1"}`,
				"vendor": `{"bounceType":"Permanent","bounceSubType":"General","diagnosticCode":"smtp; 550 5.1.1 user unknown","status":"5.1.1"}`}},
		{"ses transient bounce", "ses", "bounce",
			`{"eventType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull","bouncedRecipients":[{"emailAddress":"ada@acme-corp.com","status":"4.2.2","diagnosticCode":"smtp; 452 4.2.2 mailbox full"}],"timestamp":"2026-11-18T11:30:06.669Z"},` + sesMail + `}`,
			map[string]string{"bounce.kind": `"soft"`, "vendor.bounceSubType": `"MailboxFull"`}},
		{"ses undetermined bounce", "ses", "bounce",
			`{"eventType":"Bounce","bounce":{"bounceType":"Undetermined","bounceSubType":"Undetermined","bouncedRecipients":[{"emailAddress":"ada@acme-corp.com"}],"timestamp":"2026-11-18T11:30:06.669Z"},` + sesMail + `}`,
			map[string]string{"bounce": `{"kind":"unknown","reason":null,"code":null}`}},
		{"ses complaint", "ses", "complaint",
			`{"eventType":"Complaint","complaint":{"feedbackId":"0100017f-complaint","complaintSubType":null,"complainedRecipients":[{"emailAddress":"ada@acme-corp.com"}],"timestamp":"2026-11-18T11:40:00.000Z","userAgent":"Mozilla/5.0","complaintFeedbackType":"abuse","arrivalDate":"2026-11-18T11:39:58.000Z"},` + sesMail + `}`,
			map[string]string{"complaint": `{"kind":"abuse"}`, "vendor": `{"complaintFeedbackType":"abuse"}`}},
		{"ses click", "ses", "click",
			`{"eventType":"Click","click":{"ipAddress":"192.0.2.1","link":"https://fernhill.example.com/pricing","linkTags":{"campaign":["q4"]},"timestamp":"2026-11-18T11:45:00.000Z","userAgent":"Mozilla/5.0"},` + sesMail + `}`,
			map[string]string{"click": `{"url":"https://fernhill.example.com/pricing"}`, "vendor": `{"link":"https://fernhill.example.com/pricing"}`}},
		{"ses delivery has none", "ses", "delivered",
			`{"eventType":"Delivery","delivery":{"timestamp":"2026-11-18T11:30:06.000Z","processingTimeMillis":512,"recipients":["ada@acme-corp.com"],"smtpResponse":"250 2.0.0 OK"},` + sesMail + `}`,
			map[string]string{"bounce": ``, "complaint": ``, "click": ``, "vendor": ``}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnrich(t, Config{})
			body := `{"id":"` + tc.source + `:x","source":"` + tc.source + `","type":"` + tc.typ + `","account_id":"acct_demo","data":` + tc.data + `}`
			ev := &pipeline.Event{ID: "x", Body: []byte(body)}
			if _, err := e.Apply(context.Background(), []*pipeline.Event{ev}); err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(ev.Body) {
				t.Fatalf("not JSON: %s", ev.Body)
			}
			for path, want := range tc.want {
				if got := gjson.GetBytes(ev.Body, path).Raw; got != want {
					t.Errorf("%s = %s, want %s\n%s", path, got, want, ev.Body)
				}
			}
		})
	}
}

// TestEventTimes: a vendor's decimal time is kept to the microsecond, a
// time no event can have fails the event (dead letter), and the
// envelope's system_modified_at is carried.
func TestEventTimes(t *testing.T) {
	for _, tc := range []struct {
		name, body    string
		occurred, sys string // raw JSON; "" when the event must fail
	}{
		{"mailgun decimal", `{"id":"i","source":"mailgun","type":"delivered","data":{"event-data":{"event":"delivered","timestamp":1772445607.318224,"recipient":"a@b.c"}}}`, `"2026-03-02T10:00:07.318224Z"`, ``},
		{"sendgrid 1e300", `{"id":"i","source":"sendgrid","type":"open","data":{"email":"a@b.c","timestamp":1e300,"event":"open"}}`, "", ""},
		{"sendgrid negative", `{"id":"i","source":"sendgrid","type":"open","data":{"email":"a@b.c","timestamp":-1,"event":"open"}}`, "", ""},
		{"lever milliseconds", `{"id":"i","source":"lever","type":"opportunity.updated","data":{"id":"o","updatedAt":1772445607318}}`, `"2026-03-02T10:00:07.318Z"`, ``},
		{"salesforce both times", `{"id":"i","source":"salesforce","type":"contact.updated","occurred_at":"2026-11-17T09:41:05Z","system_modified_at":"2026-11-19T11:18:52Z","data":{"Id":"003"}}`, `"2026-11-17T09:41:05Z"`, `"2026-11-19T11:18:52Z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnrich(t, Config{})
			ev := &pipeline.Event{ID: "i", Body: []byte(tc.body)}
			_, err := e.Apply(context.Background(), []*pipeline.Event{ev})
			if tc.occurred == "" {
				var be *pipeline.BatchError
				if !errors.As(err, &be) || be.Len() != 1 || !pipeline.IsPermanent(be.Failures[0].Err) || !errors.Is(be.Failures[0].Err, eventtime.ErrOutOfRange) {
					t.Fatalf("err %v, want the event failed permanently (dead letter) as out of range", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(ev.Body, "occurred_at").Raw; got != tc.occurred {
				t.Errorf("occurred_at %s, want %s", got, tc.occurred)
			}
			if got := gjson.GetBytes(ev.Body, "system_modified_at").Raw; got != tc.sys {
				t.Errorf("system_modified_at %s, want %s", got, tc.sys)
			}
		})
	}
}
