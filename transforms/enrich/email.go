package enrich

import (
	"strings"

	"github.com/tidwall/gjson"
)

// mail is the email part of a provider's mapping: the vendor fields kept
// under `vendor` (read in the same pass as the others, after the
// attributes) and how they classify the event.
type mail struct {
	vendor []attr
	// facts classifies an event of canonical type typ; get returns the
	// vendor field named name (one of vendor's names).
	facts func(typ string, get func(name string) gjson.Result) mailFacts
}

// mailFacts is what a platform acts on: which bounces to suppress, which
// to retry, which complaints, which link was clicked.
type mailFacts struct {
	bounceKind, bounceReason, bounceCode string // bounce events: hard, soft, blocked or unknown
	complaintKind                        string // complaint events
	clickURL                             string // click events
}

// Bounce kinds.
const (
	bounceHard    = "hard"
	bounceSoft    = "soft"
	bounceBlocked = "blocked"
	bounceUnknown = "unknown"
)

var (
	// SendGrid event webhook: a bounce's type is "bounce" (the address
	// does not exist: hard) or "blocked" (the receiving server refused
	// the message); reason is the server's answer, status its SMTP code.
	sendgridMail = &mail{
		vendor: []attr{{"type", "type"}, {"reason", "reason"}, {"status", "status"}, {"bounce_classification", "bounce_classification"}, {"url", "url"}},
		facts: func(typ string, get func(string) gjson.Result) mailFacts {
			var f mailFacts
			switch typ {
			case "bounce":
				f.bounceKind = bounceUnknown
				switch get("type").Str {
				case "bounce":
					f.bounceKind = bounceHard
				case "blocked":
					f.bounceKind = bounceBlocked
				}
				f.bounceReason, f.bounceCode = get("reason").Str, get("status").Str
			case "complaint": // spamreport: the recipient marked it as spam
				f.complaintKind = "abuse"
			case "click":
				f.clickURL = get("url").Str
			}
			return f
		},
	}
	// Mailgun: a failed event's severity is permanent or temporary;
	// reason "espblock" is the receiving provider blocking the sender.
	mailgunMail = &mail{
		vendor: []attr{{"severity", "event-data.severity"}, {"reason", "event-data.reason"}, {"delivery_status_code", "event-data.delivery-status.code"},
			{"delivery_status_message", "event-data.delivery-status.message"}, {"delivery_status_description", "event-data.delivery-status.description"}, {"url", "event-data.url"}},
		facts: func(typ string, get func(string) gjson.Result) mailFacts {
			var f mailFacts
			switch typ {
			case "bounce":
				switch sev := get("severity").Str; {
				case sev == "permanent" && get("reason").Str == "espblock":
					f.bounceKind = bounceBlocked
				case sev == "permanent":
					f.bounceKind = bounceHard
				case sev == "temporary":
					f.bounceKind = bounceSoft
				default:
					f.bounceKind = bounceUnknown
				}
				f.bounceReason = firstString(get("delivery_status_description"), get("delivery_status_message"))
				if c := get("delivery_status_code"); c.Exists() && c.Type != gjson.Null {
					f.bounceCode = c.String()
				}
			case "complaint":
				f.complaintKind = "abuse"
			case "click":
				f.clickURL = get("url").Str
			}
			return f
		},
	}
	// SES event publishing: bounceType Permanent, Transient or
	// Undetermined; the first bounced recipient's status and diagnostic
	// code; the complaint's feedback type; the clicked link.
	sesMail = &mail{
		vendor: []attr{{"bounceType", "bounce.bounceType"}, {"bounceSubType", "bounce.bounceSubType"}, {"diagnosticCode", "bounce.bouncedRecipients.0.diagnosticCode"},
			{"status", "bounce.bouncedRecipients.0.status"}, {"complaintFeedbackType", "complaint.complaintFeedbackType"}, {"complaintSubType", "complaint.complaintSubType"}, {"link", "click.link"}},
		facts: func(typ string, get func(string) gjson.Result) mailFacts {
			var f mailFacts
			switch typ {
			case "bounce":
				switch get("bounceType").Str {
				case "Permanent":
					f.bounceKind = bounceHard
				case "Transient":
					f.bounceKind = bounceSoft
				default:
					f.bounceKind = bounceUnknown
				}
				f.bounceReason, f.bounceCode = get("diagnosticCode").Str, get("status").Str
			case "complaint":
				f.complaintKind = strings.ToLower(get("complaintFeedbackType").Str)
				if f.complaintKind == "" {
					f.complaintKind = bounceUnknown
				}
			case "click":
				f.clickURL = get("link").Str
			}
			return f
		},
	}
)

func firstString(vs ...gjson.Result) string {
	for _, v := range vs {
		if v.Str != "" {
			return v.Str
		}
	}
	return ""
}

// appendMail appends the email event's bounce, complaint, click and vendor
// objects. base is the slot of the first vendor field.
func appendMail(buf []byte, mm *mail, typ string, f *[maxSlots]gjson.Result, base int) []byte {
	get := func(name string) gjson.Result {
		for i, a := range mm.vendor {
			if a.name == name {
				return f[base+i]
			}
		}
		return gjson.Result{}
	}
	facts := mm.facts(typ, get)
	if facts.bounceKind != "" {
		buf = append(buf, `,"bounce":{"kind":"`...)
		buf = append(buf, facts.bounceKind...)
		buf = append(buf, `","reason":`...)
		buf = appendOptString(buf, facts.bounceReason)
		buf = append(buf, `,"code":`...)
		buf = appendOptString(buf, facts.bounceCode)
		buf = append(buf, '}')
	}
	if facts.complaintKind != "" {
		buf = append(buf, `,"complaint":{"kind":`...)
		buf = appendString(buf, facts.complaintKind)
		buf = append(buf, '}')
	}
	if facts.clickURL != "" {
		buf = append(buf, `,"click":{"url":`...)
		buf = appendString(buf, facts.clickURL)
		buf = append(buf, '}')
	}
	n := 0
	for i, a := range mm.vendor {
		v := f[base+i]
		switch v.Type {
		case gjson.String, gjson.Number, gjson.True, gjson.False:
		default: // absent, null, or not a scalar
			continue
		}
		if n == 0 {
			buf = append(buf, `,"vendor":{`...)
		} else {
			buf = append(buf, ',')
		}
		n++
		buf = appendString(buf, a.name)
		buf = append(buf, ':')
		if v.Type == gjson.String {
			buf = appendString(buf, v.Str) // re-escaped: the raw may hold escapes JSON allows but we normalize
		} else {
			buf = append(buf, v.Raw...)
		}
	}
	if n > 0 {
		buf = append(buf, '}')
	}
	return buf
}

func appendOptString(buf []byte, s string) []byte {
	if s == "" {
		return append(buf, "null"...)
	}
	return appendString(buf, s)
}
