package enrich

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// mail is the email part of a provider's mapping: the vendor fields kept
// under `vendor` (read in the same pass as the others, after the
// attributes) and how they classify the event.
type mail struct {
	vendor []attr
	// facts is the provider's classification (sendgridFacts, …), called
	// directly by classify so the fields read stay on the stack.
	facts provider
}

type provider int

const (
	providerSendGrid provider = iota
	providerMailgun
	providerSES
)

// classify classifies an event of canonical type typ from the vendor
// fields read.
func (mm *mail) classify(typ string, v vendorFields) mailFacts {
	switch mm.facts {
	case providerSendGrid:
		return sendgridFacts(typ, v)
	case providerMailgun:
		return mailgunFacts(typ, v)
	default:
		return sesFacts(typ, v)
	}
}

// vendorFields are a mail's vendor fields as read, in its vendor order.
type vendorFields struct {
	names []attr
	vals  []gjson.Result
}

// get returns the field named name.
func (vf vendorFields) get(name string) gjson.Result {
	for i, a := range vf.names {
		if a.name == name {
			return vf.vals[i]
		}
	}
	return gjson.Result{}
}

// mailFacts is what a platform acts on: which bounces to suppress, which
// to retry, which complaints, which link was clicked.
type mailFacts struct {
	bounceKind, bounceReason, bounceCode string // bounce and deferred events: hard, soft, blocked or unknown
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
		vendor: []attr{{"type", "type"}, {"reason", "reason"}, {"status", "status"}, {"bounce_classification", "bounce_classification"}, {"url", "url"},
			{"response", "response"}, {"attempt", "attempt"}},
		facts: providerSendGrid,
	}
	// Mailgun: a failed event's severity is permanent or temporary;
	// reason "espblock" is the receiving provider blocking the sender.
	mailgunMail = &mail{
		vendor: []attr{{"severity", "event-data.severity"}, {"reason", "event-data.reason"}, {"delivery_status_code", "event-data.delivery-status.code"}, {"delivery_status_enhanced_code", "event-data.delivery-status.enhanced-code"},
			{"delivery_status_message", "event-data.delivery-status.message"}, {"delivery_status_description", "event-data.delivery-status.description"}, {"url", "event-data.url"}},
		facts: providerMailgun,
	}
	// SES event publishing: bounceType Permanent, Transient or
	// Undetermined; the first bounced recipient's status and diagnostic
	// code; the complaint's feedback type; the clicked link.
	sesMail = &mail{
		vendor: []attr{{"bounceType", "bounce.bounceType"}, {"bounceSubType", "bounce.bounceSubType"}, {"diagnosticCode", "bounce.bouncedRecipients.0.diagnosticCode"},
			{"status", "bounce.bouncedRecipients.0.status"}, {"complaintFeedbackType", "complaint.complaintFeedbackType"}, {"complaintSubType", "complaint.complaintSubType"}, {"link", "click.link"},
			{"delayType", "deliveryDelay.delayType"}, {"delayStatus", "deliveryDelay.delayedRecipients.0.status"}, {"delayDiagnosticCode", "deliveryDelay.delayedRecipients.0.diagnosticCode"}},
		facts: providerSES,
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
	facts := mm.classify(typ, vendorFields{mm.vendor, f[base : base+len(mm.vendor)]})
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
		buf = pipeline.AppendJSONString(buf, facts.complaintKind)
		buf = append(buf, '}')
	}
	if facts.clickURL != "" {
		buf = append(buf, `,"click":{"url":`...)
		buf = pipeline.AppendJSONString(buf, facts.clickURL)
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
		buf = pipeline.AppendJSONString(buf, a.name)
		buf = append(buf, ':')
		if v.Type == gjson.String {
			buf = pipeline.AppendJSONString(buf, v.Str) // re-escaped: the raw may hold escapes JSON allows but we normalize
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
	return pipeline.AppendJSONString(buf, s)
}

func sendgridFacts(typ string, v vendorFields) mailFacts {
	var f mailFacts
	switch typ {
	case "bounce":
		f.bounceKind = bounceUnknown
		switch v.get("type").Str {
		case "bounce":
			f.bounceKind = bounceHard
		case "blocked":
			f.bounceKind = bounceBlocked
		}
		f.bounceReason, f.bounceCode = v.get("reason").Str, v.get("status").Str
	case "deferred": // the receiving server said try later: SendGrid retries
		f.bounceKind, f.bounceReason = bounceSoft, v.get("response").Str
	case "complaint": // spamreport: the recipient marked it as spam
		f.complaintKind = "abuse"
	case "click":
		f.clickURL = v.get("url").Str
	}
	return f
}

func mailgunFacts(typ string, v vendorFields) mailFacts {
	var f mailFacts
	switch typ {
	case "bounce", "deferred": // the webhooks source names a temporary failure deferred
		switch sev := v.get("severity").Str; {
		case sev == "permanent" && v.get("reason").Str == "espblock":
			f.bounceKind = bounceBlocked
		case sev == "permanent":
			f.bounceKind = bounceHard
		case sev == "temporary":
			f.bounceKind = bounceSoft
		default:
			f.bounceKind = bounceUnknown
		}
		f.bounceReason = firstString(v.get("delivery_status_description"), v.get("delivery_status_message"))
		f.bounceCode = v.get("delivery_status_enhanced_code").Str
		if c := v.get("delivery_status_code"); f.bounceCode == "" && c.Exists() && c.Type != gjson.Null {
			f.bounceCode = c.String()
		}
	case "complaint":
		f.complaintKind = "abuse"
	case "click":
		f.clickURL = v.get("url").Str
	}
	return f
}

func sesFacts(typ string, v vendorFields) mailFacts {
	var f mailFacts
	switch typ {
	case "bounce":
		switch v.get("bounceType").Str {
		case "Permanent":
			f.bounceKind = bounceHard
		case "Transient":
			f.bounceKind = bounceSoft
		default:
			f.bounceKind = bounceUnknown
		}
		f.bounceReason, f.bounceCode = v.get("diagnosticCode").Str, v.get("status").Str
	case "deferred": // a DeliveryDelay: SES keeps trying
		f.bounceKind = bounceSoft
		f.bounceReason, f.bounceCode = v.get("delayDiagnosticCode").Str, v.get("delayStatus").Str
	case "complaint":
		f.complaintKind = strings.ToLower(v.get("complaintFeedbackType").Str)
		if f.complaintKind == "" {
			f.complaintKind = bounceUnknown
		}
	case "click":
		f.clickURL = v.get("link").Str
	}
	return f
}
