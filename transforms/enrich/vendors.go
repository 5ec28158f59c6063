package enrich

import (
	"strings"

	"github.com/sluicehq/sluice/internal/envelope"

	"github.com/tidwall/gjson"
)

// vendor is how one source's records map to canonical events: one
// mapping per record type its connector emits, and a default for the rest.
type vendor struct {
	def   *mapping
	types []typeMapping
}

// typeMapping is the mapping of the envelope types with one prefix: the
// part before the first dot ("opportunity" of "opportunity.updated").
type typeMapping struct {
	prefix string
	*mapping
}

// mapping is how one kind of vendor record maps to the canonical event.
type mapping struct {
	kind     string            // entity kind: contact, lead, account, deal, activity, candidate, application, job, message
	entityID string            // path in data of the entity's id
	role     string            // actor (a CRM or ATS record's person) or recipient (email)
	email    string            // path in data of the person's address, for records about a person
	time     string            // path in data of the vendor's own event time
	domain   string            // path in data of the company's domain or web site, for company records
	attrs    []attr            // vendor fields copied into attributes
	mail     *mail             // email events: the vendor fields under `vendor`, read after attrs
	is       guard             // for a type's mapping: which records are that type's object
	paths    envelope.PathNode // the paths read, as a tree of keys (index)
	each     [maxSlots]string  // per slot: the field of each element of an array to list ("a.#.f" paths)
}

// attr is an attribute and the path in data it is copied from. A path
// "a.#.f" lists field f of every element of array a.
type attr struct{ name, path string }

// guard tells a type's records apart from other objects sent with that
// type: sources/generate sends Salesforce Contacts as lead.converted,
// opportunity.stage_changed and task.completed, and Greenhouse candidates
// as application.*. A record the guard rejects takes the vendor's default
// mapping. The guard's field is read in the same pass as the others.
type guard struct {
	path string // a field of data
	// want: if set, the field, when present, must equal it (Salesforce's
	// attributes.type names the sObject; records without it are trusted);
	// if empty, the field must be present.
	want string
}

// lookup picks the mapping of an envelope type: the one of its prefix,
// else the vendor's default. The prefix is the part before the first dot
// ("opportunity" of "opportunity.updated"), a substring: no allocation.
func (v *vendor) lookup(typ string) *mapping {
	prefix := typ
	if i := strings.IndexByte(typ, '.'); i >= 0 {
		prefix = typ[:i]
	}
	for i := range v.types {
		if v.types[i].prefix == prefix {
			return v.types[i].mapping
		}
	}
	return v.def
}

// pick is the tree of paths envelope.ReadPaths reads from data for an
// envelope of source and typ: their mapping's, nil for an unknown source.
func pick(source, typ string) *envelope.PathNode {
	v, ok := vendors[source]
	if !ok {
		return nil
	}
	return &v.lookup(typ).paths
}

// read maps data: with the mapping of typ, or the vendor's default when
// that mapping's guard rejects data. walked says out already holds the
// fields of typ's mapping (read in the envelope's scan).
func (v *vendor) read(typ string, data gjson.Result, out *[maxSlots]gjson.Result, walked bool) *mapping {
	m := v.lookup(typ)
	if !walked {
		envelope.WalkPaths(&m.paths, data, out[:])
	}
	if m.admits(out) || m == v.def { // (no default mapping has a guard)
		return m
	}
	*out = [maxSlots]gjson.Result{}
	envelope.WalkPaths(&v.def.paths, data, out[:])
	return v.def
}

// Slots of a mapping's lookups, in the results of (*mapping).read: entity
// id, email, time, domain, guard, then the attributes in order.
const (
	slotEntity = iota
	slotEmail
	slotTime
	slotDomain
	slotGuard
	slotAttrs
	maxSlots = 20
)

// slotPaths lists the mapping's paths by slot: entity id, email, time,
// domain, the guard's path, the attributes from slotAttrs on, then the
// email vendor fields; "" where the mapping has none.
func (m *mapping) slotPaths() []string {
	paths := append([]string{m.entityID, m.email, m.time, m.domain, m.is.path}, make([]string, len(m.attrs))...)
	for i, a := range m.attrs {
		paths[slotAttrs+i] = a.path
	}
	if m.mail != nil {
		for _, a := range m.mail.vendor {
			paths = append(paths, a.path)
		}
	}
	return paths
}

// index builds the mapping's path tree.
func (m *mapping) index() {
	paths := m.slotPaths()
	if len(paths) > maxSlots {
		panic("enrich: too many paths in the " + m.kind + " mapping")
	}
	for slot, p := range paths {
		if p == "" {
			continue
		}
		if arr, f, ok := strings.Cut(p, ".#."); ok {
			p, m.each[slot] = arr, f
		}
		if err := m.paths.Add(p, slot); err != nil {
			panic("enrich: the " + m.kind + " mapping: " + err.Error())
		}
	}
}

// admits reports whether the guard admits the record whose fields are
// out: a guard's field, when present, must equal want (if set); without
// want it must be present.
func (m *mapping) admits(out *[maxSlots]gjson.Result) bool {
	if m.is.path == "" {
		return true
	}
	g := out[slotGuard]
	if !g.Exists() {
		return m.is.want != ""
	}
	return m.is.want == "" || g.Str == m.is.want
}

func init() {
	indexed := map[*mapping]bool{}
	index := func(m *mapping) {
		if !indexed[m] {
			m.index()
			indexed[m] = true
		}
	}
	for _, v := range vendors {
		index(v.def)
		for _, t := range v.types {
			index(t.mapping)
		}
	}
}

// The mappings: docs/canonical-events.md documents them, with the type
// prefixes each connector emits.
var (
	salesforceContact = &mapping{
		kind: "contact", entityID: "Id", role: "actor", email: "Email", time: "LastModifiedDate",
		attrs: []attr{{"first_name", "FirstName"}, {"last_name", "LastName"}, {"title", "Title"}, {"phone", "Phone"}, {"crm_account_id", "AccountId"}, {"owner_id", "OwnerId"}, {"lead_source", "LeadSource"}, {"city", "MailingCity"}, {"deleted", "IsDeleted"}},
	}
	salesforceLead = &mapping{
		kind: "lead", entityID: "Id", role: "actor", email: "Email", time: "LastModifiedDate", is: guard{"attributes.type", "Lead"},
		attrs: []attr{{"first_name", "FirstName"}, {"last_name", "LastName"}, {"title", "Title"}, {"phone", "Phone"}, {"company", "Company"}, {"status", "Status"}, {"lead_source", "LeadSource"}, {"city", "City"}, {"owner_id", "OwnerId"}, {"converted", "IsConverted"}, {"converted_contact_id", "ConvertedContactId"}, {"converted_account_id", "ConvertedAccountId"}, {"converted_opportunity_id", "ConvertedOpportunityId"}, {"deleted", "IsDeleted"}},
	}
	salesforceOpportunity = &mapping{
		kind: "deal", entityID: "Id", time: "LastModifiedDate", is: guard{"attributes.type", "Opportunity"},
		attrs: []attr{{"name", "Name"}, {"stage", "StageName"}, {"amount", "Amount"}, {"close_date", "CloseDate"}, {"probability", "Probability"}, {"closed", "IsClosed"}, {"won", "IsWon"}, {"crm_account_id", "AccountId"}, {"owner_id", "OwnerId"}, {"deleted", "IsDeleted"}},
	}
	salesforceTask = &mapping{
		kind: "activity", entityID: "Id", time: "LastModifiedDate", is: guard{"attributes.type", "Task"},
		attrs: []attr{{"subject", "Subject"}, {"status", "Status"}, {"priority", "Priority"}, {"activity_date", "ActivityDate"}, {"who_id", "WhoId"}, {"what_id", "WhatId"}, {"crm_account_id", "AccountId"}, {"owner_id", "OwnerId"}, {"deleted", "IsDeleted"}},
	}
	salesforceAccount = &mapping{
		kind: "account", entityID: "Id", time: "LastModifiedDate", domain: "Website", is: guard{"attributes.type", "Account"},
		attrs: []attr{{"name", "Name"}, {"website", "Website"}, {"industry", "Industry"}, {"type", "Type"}, {"employees", "NumberOfEmployees"}, {"city", "BillingCity"}, {"country", "BillingCountry"}, {"parent_id", "ParentId"}, {"owner_id", "OwnerId"}, {"deleted", "IsDeleted"}},
	}

	hubspotContact = &mapping{
		kind: "contact", entityID: "id", role: "actor", email: "properties.email", time: "updatedAt",
		attrs: []attr{{"first_name", "properties.firstname"}, {"last_name", "properties.lastname"}, {"company", "properties.company"}, {"title", "properties.jobtitle"}, {"lifecycle_stage", "properties.lifecyclestage"}, {"deleted", "archived"},
			{"phone", "properties.phone"}, {"city", "properties.city"}, {"company_id", "properties.associatedcompanyid"}},
	}
	hubspotCompany = &mapping{
		kind: "account", entityID: "id", time: "updatedAt", domain: "properties.domain",
		attrs: []attr{{"name", "properties.name"}, {"industry", "properties.industry"}, {"employees", "properties.numberofemployees"}, {"city", "properties.city"}, {"country", "properties.country"}, {"lifecycle_stage", "properties.lifecyclestage"}, {"owner_id", "properties.hubspot_owner_id"}, {"deleted", "archived"}},
	}
	hubspotDeal = &mapping{
		kind: "deal", entityID: "id", time: "updatedAt",
		attrs: []attr{{"name", "properties.dealname"}, {"stage", "properties.dealstage"}, {"amount", "properties.amount"}, {"close_date", "properties.closedate"}, {"pipeline", "properties.pipeline"}, {"deal_type", "properties.dealtype"}, {"owner_id", "properties.hubspot_owner_id"}, {"deleted", "archived"}},
	}

	greenhouseCandidate = &mapping{
		kind: "candidate", entityID: "id", role: "actor", email: "email_addresses.0.value", time: "updated_at",
		attrs: []attr{{"first_name", "first_name"}, {"last_name", "last_name"}, {"company", "company"}, {"title", "title"}, {"application_id", "applications.0.id"}, {"stage", "applications.0.current_stage.name"}, {"status", "applications.0.status"}, {"tags", "tags"}},
	}
	greenhouseApplication = &mapping{
		kind: "application", entityID: "id", time: "last_activity_at", is: guard{path: "candidate_id"},
		attrs: []attr{{"candidate_id", "candidate_id"}, {"job_id", "jobs.0.id"}, {"job_name", "jobs.0.name"}, {"stage", "current_stage.name"}, {"status", "status"}, {"source", "source.public_name"}, {"applied_at", "applied_at"}, {"rejected_at", "rejected_at"}, {"rejection_reason", "rejection_reason.name"}, {"prospect", "prospect"}},
	}
	greenhouseJob = &mapping{
		kind: "job", entityID: "id", time: "updated_at",
		attrs: []attr{{"name", "name"}, {"status", "status"}, {"requisition_id", "requisition_id"}, {"departments", "departments.#.name"}, {"offices", "offices.#.name"}, {"confidential", "confidential"}, {"opened_at", "opened_at"}, {"closed_at", "closed_at"}},
	}

	leverOpportunity = &mapping{
		kind: "candidate", entityID: "id", role: "actor", email: "emails.0", time: "updatedAt",
		attrs: []attr{{"name", "name"}, {"company", "headline"}, {"stage_id", "stage"}, {"origin", "origin"}, {"city", "location"}, {"tags", "tags"}, {"contact_id", "contact"}, {"archived_at", "archived.archivedAt"}},
	}
)

var vendors = map[string]*vendor{
	"salesforce": {def: salesforceContact, types: []typeMapping{
		{"contact", salesforceContact}, {"lead", salesforceLead}, {"opportunity", salesforceOpportunity}, {"task", salesforceTask}, {"account", salesforceAccount},
	}},
	"hubspot": {def: hubspotContact, types: []typeMapping{
		{"contact", hubspotContact}, {"company", hubspotCompany}, {"deal", hubspotDeal},
	}},
	"greenhouse": {def: greenhouseCandidate, types: []typeMapping{
		{"candidate", greenhouseCandidate}, {"application", greenhouseApplication}, {"job", greenhouseJob},
	}},
	"lever": {def: leverOpportunity},
	"sendgrid": {def: &mapping{
		kind: "message", entityID: "sg_message_id", role: "recipient", email: "email", time: "timestamp",
		attrs: []attr{{"vendor_event", "event"}, {"event_id", "sg_event_id"}, {"categories", "category"}, {"ip", "ip"}, {"user_agent", "useragent"}},
		mail:  sendgridMail,
	}},
	"mailgun": {def: &mapping{
		kind: "message", entityID: "event-data.message.headers.message-id", role: "recipient", email: "event-data.recipient", time: "event-data.timestamp",
		attrs: []attr{{"vendor_event", "event-data.event"}, {"event_id", "event-data.id"}, {"subject", "event-data.message.headers.subject"}, {"from", "event-data.message.headers.from"}, {"delivery_code", "event-data.delivery-status.code"}},
		mail:  mailgunMail,
	}},
	"ses": {def: &mapping{
		kind: "message", entityID: "mail.messageId", role: "recipient", email: "mail.destination.0", time: "mail.timestamp",
		attrs: []attr{{"vendor_event", "eventType"}, {"from", "mail.source"}, {"smtp_response", "delivery.smtpResponse"}, {"processing_ms", "delivery.processingTimeMillis"}},
		mail:  sesMail,
	}},
}
