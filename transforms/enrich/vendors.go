package enrich

// vendor is how one vendor's data maps to the canonical event.
type vendor struct {
	kind     string // entity kind: contact, candidate, message
	entityID string // path in data of the entity's id
	role     string // actor (CRM, ATS: the person) or recipient (email)
	email    string // path in data of the person's address
	time     string // path in data of the vendor's own event time
	attrs    []attr // vendor fields copied into attributes
}

type attr struct{ name, path string }

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
