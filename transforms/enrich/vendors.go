package enrich

import (
	"strings"

	"github.com/tidwall/gjson"
)

// vendor is how one vendor's data maps to the canonical event.
type vendor struct {
	kind     string // entity kind: contact, candidate, message
	entityID string // path in data of the entity's id
	role     string // actor (CRM, ATS: the person) or recipient (email)
	email    string // path in data of the person's address
	time     string // path in data of the vendor's own event time
	attrs    []attr // vendor fields copied into attributes
	byTop    map[string][]ref
}

type attr struct{ name, path string }

// Slots of a vendor's lookups, in the results of (*vendor).read: entity
// id, email, time, then the attributes in order.
const (
	slotEntity = iota
	slotEmail
	slotTime
	slotAttrs
	maxSlots = 16
)

// ref is one lookup under a top-level key of data: the slot it fills and
// the rest of the path below that key ("" for the key itself).
type ref struct {
	slot int
	rest string
}

// index groups a vendor's paths by their top-level key, so read walks data
// once instead of scanning it once per path.
func (v *vendor) index() {
	v.byTop = map[string][]ref{}
	paths := append([]string{v.entityID, v.email, v.time}, make([]string, len(v.attrs))...)
	for i, a := range v.attrs {
		paths[slotAttrs+i] = a.path
	}
	if len(paths) > maxSlots {
		panic("enrich: too many vendor paths")
	}
	for slot, p := range paths {
		if p == "" {
			continue
		}
		top, rest, _ := strings.Cut(p, ".")
		v.byTop[top] = append(v.byTop[top], ref{slot: slot, rest: rest})
	}
}

// read fills out with the vendor's fields of data in one pass over it.
func (v *vendor) read(data gjson.Result, out *[maxSlots]gjson.Result) {
	left := len(v.byTop)
	data.ForEach(func(k, val gjson.Result) bool {
		refs, ok := v.byTop[k.Str]
		if !ok {
			return true
		}
		for _, r := range refs {
			if r.rest == "" {
				out[r.slot] = val
			} else {
				out[r.slot] = val.Get(r.rest)
			}
		}
		left--
		return left > 0
	})
}

func init() {
	for _, v := range vendors {
		v.index()
	}
}

var vendors = map[string]*vendor{
	"salesforce": {
		kind: "contact", entityID: "Id", role: "actor", email: "Email", time: "LastModifiedDate",
		attrs: []attr{{"first_name", "FirstName"}, {"last_name", "LastName"}, {"title", "Title"}, {"phone", "Phone"}, {"crm_account_id", "AccountId"}, {"owner_id", "OwnerId"}, {"lead_source", "LeadSource"}, {"city", "MailingCity"}, {"deleted", "IsDeleted"}},
	},
	"hubspot": {
		kind: "contact", entityID: "id", role: "actor", email: "properties.email", time: "updatedAt",
		attrs: []attr{{"first_name", "properties.firstname"}, {"last_name", "properties.lastname"}, {"company", "properties.company"}, {"title", "properties.jobtitle"}, {"lifecycle_stage", "properties.lifecyclestage"}, {"deleted", "archived"}},
	},
	"greenhouse": {
		kind: "candidate", entityID: "id", role: "actor", email: "email_addresses.0.value", time: "updated_at",
		attrs: []attr{{"first_name", "first_name"}, {"last_name", "last_name"}, {"company", "company"}, {"title", "title"}, {"application_id", "applications.0.id"}, {"stage", "applications.0.current_stage.name"}, {"status", "applications.0.status"}, {"tags", "tags"}},
	},
	"lever": {
		kind: "candidate", entityID: "id", role: "actor", email: "emails.0", time: "updatedAt",
		attrs: []attr{{"name", "name"}, {"company", "headline"}, {"stage_id", "stage"}, {"origin", "origin"}, {"city", "location"}, {"tags", "tags"}},
	},
	"sendgrid": {
		kind: "message", entityID: "sg_message_id", role: "recipient", email: "email", time: "timestamp",
		attrs: []attr{{"vendor_event", "event"}, {"event_id", "sg_event_id"}, {"categories", "category"}, {"ip", "ip"}, {"user_agent", "useragent"}},
	},
	"mailgun": {
		kind: "message", entityID: "event-data.message.headers.message-id", role: "recipient", email: "event-data.recipient", time: "event-data.timestamp",
		attrs: []attr{{"vendor_event", "event-data.event"}, {"event_id", "event-data.id"}, {"subject", "event-data.message.headers.subject"}, {"from", "event-data.message.headers.from"}, {"delivery_code", "event-data.delivery-status.code"}},
	},
	"ses": {
		kind: "message", entityID: "mail.messageId", role: "recipient", email: "mail.destination.0", time: "mail.timestamp",
		attrs: []attr{{"vendor_event", "eventType"}, {"from", "mail.source"}, {"smtp_response", "delivery.smtpResponse"}, {"processing_ms", "delivery.processingTimeMillis"}},
	},
}
