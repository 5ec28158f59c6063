// Package enrich maps vendor payloads into the canonical event schema
// (docs/canonical-events.md), normalizes the email address, classifies its
// domain as free mail or corporate, looks the domain's account up in a
// static table and stamps ingested_at and the pipeline name.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/tidwall/gjson"
)

// Config is the `enrich` transform's YAML.
type Config struct {
	// StripTags removes "+tag" from the local part: ada+crm@x.io → ada@x.io.
	StripTags bool `yaml:"strip_tags"`
	// Accounts is a CSV (header row, one column named domain) or JSON
	// ({"domain": {fields}} or [{"domain": ..., fields}]) file loaded at
	// start: the account fields of each corporate domain.
	Accounts string `yaml:"accounts"`
	// FreeMailDomains adds domains to the bundled free-mail list.
	FreeMailDomains []string `yaml:"free_mail_domains"`
	// Into, if set, writes the canonical event under this key and keeps the
	// original body; by default the canonical event replaces the body.
	Into string `yaml:"into"`
	// Unknown decides what happens to an event whose source is not a known
	// vendor: fail (dead letter, the default) or pass (unchanged).
	Unknown string `yaml:"unknown"`
}

// NeedsDecodedBody: this step reads the decoded event, so `sluice validate`
// wants a decode step before it.
func (c *Config) NeedsDecodedBody() bool { return true }

// SetDefaults fills the defaults.
func (c *Config) SetDefaults() { c.Unknown = "fail" }

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.Unknown != "fail" && c.Unknown != "pass" {
		errs = append(errs, pipeline.FieldErrorf("unknown", "must be fail or pass; got %q", c.Unknown))
	}
	// The file itself is read when the step is built, relative to the
	// working directory: `sluice validate` checks files from anywhere.
	if c.Accounts != "" {
		switch strings.ToLower(filepath.Ext(c.Accounts)) {
		case ".csv", ".json":
		default:
			errs = append(errs, pipeline.FieldErrorf("accounts", "want a .csv or .json file; got %q", c.Accounts))
		}
	}
	return errors.Join(errs...)
}

// Register adds the enrich transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "enrich", "map CRM, ATS and email vendor payloads to canonical events; normalize emails, classify domains, look up accounts", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// Enrich is the transform.
type Enrich struct {
	cfg      Config
	pipeline string
	freeMail map[string]struct{}
	accounts map[string][]byte // domain -> JSON object of its fields
	now      func() time.Time
}

// New builds an enrich step, loading the accounts table; bc.Pipeline is
// the pipeline name it stamps.
func New(bc pipeline.BuildContext, c Config) (*Enrich, error) {
	e := &Enrich{cfg: c, pipeline: bc.Pipeline, now: time.Now, freeMail: map[string]struct{}{}}
	for _, d := range freeMailDomains {
		e.freeMail[d] = struct{}{}
	}
	for _, d := range c.FreeMailDomains {
		e.freeMail[strings.ToLower(strings.TrimSpace(d))] = struct{}{}
	}
	if c.Accounts != "" {
		a, err := loadAccounts(c.Accounts)
		if err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		e.accounts = a
	}
	return e, nil
}

// Apply maps every event; one that cannot be mapped fails permanently.
// The canonical bodies of a batch are written into one buffer (each body
// a full slice of its own part, so an edit that grows one reallocates it
// rather than writing into the next), and ingested_at is formatted once.
func (e *Enrich) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	b := newBatch(in, e.now())
	return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		return pipeline.Permanent(e.enrich(ev, &b))
	})
}

// batch is what the events of one Apply share: the buffer their bodies are
// written into and the batch's ingested_at.
type batch struct {
	arena []byte
	left  int    // the room the batch's events not yet written may need
	now   []byte // RFC 3339, UTC
}

// arenaChunk is the size of the buffers a batch's bodies are written into:
// a canonical body is usually much smaller than the envelope it comes from
// (~40% of it in BenchmarkEnrich), so one buffer sized for every envelope
// was mostly never written; chunks hold what is written, and a chunk's
// unused end is at most one body's room.
const arenaChunk = 64 << 10

// newBatch is the batch of in, with the room its bodies may need.
func newBatch(in []*pipeline.Event, now time.Time) batch {
	left := 0
	for _, ev := range in {
		left += room(ev)
	}
	return batch{left: left, now: now.UTC().AppendFormat(nil, time.RFC3339Nano)}
}

// room is what ev's canonical body is expected to need at most: a
// larger one grows its chunk (a copy of the chunk, bodies kept).
func room(ev *pipeline.Event) int { return len(ev.Body) + 256 }

// reserve makes sure the arena has room for ev's body, starting a new
// chunk when the current one has too little left.
func (b *batch) reserve(ev *pipeline.Event) {
	need := room(ev)
	b.left = max(b.left-need, 0)
	if cap(b.arena)-len(b.arena) < need {
		b.arena = make([]byte, 0, max(need, min(arenaChunk, need+b.left)))
	}
}

// ErrUnknownSource is the reason for an event whose source is no known vendor.
var ErrUnknownSource = errors.New("unknown source")

// record is one event being mapped: its envelope, the mapping picked for
// it and the fields that mapping read from data (the results point into
// the body), and the canonical body written so far.
type record struct {
	env    envelope.Fields
	source string
	m      *mapping
	f      [maxSlots]gjson.Result
	buf    []byte
}

func (e *Enrich) enrich(ev *pipeline.Event, b *batch) error {
	if ev.Body == nil {
		return fmt.Errorf("enrich: event %s has no decoded body (add a decode step first)", ev.ID)
	}
	var r record
	if ok, err := e.read(ev, &r); !ok || err != nil {
		return err
	}
	b.reserve(ev)
	start := len(b.arena)
	r.buf = b.arena
	if err := e.write(ev, &r, b.now); err != nil {
		b.arena = r.buf[:start]
		return err
	}
	body := r.buf[start:len(r.buf):len(r.buf)]
	b.arena = r.buf
	if e.cfg.Into != "" {
		return ev.SetRaw(e.cfg.Into, body)
	}
	ev.Body = body
	return nil
}

// read reads ev's envelope and, with its vendor's mapping, the fields of
// its data, in one pass over data. ok is false for an unknown source that
// passes unchanged.
func (e *Enrich) read(ev *pipeline.Event, r *record) (ok bool, err error) {
	// The body is only read while the new one is built, so the results may
	// point into it without copies. Raw values (data fields) are copied
	// into the canonical body as they are: a deeply nested one would reach
	// every recursive encoder after, so the body's depth is checked in the
	// same scan.
	// The mapping's fields of data are read in the same scan when source
	// and type come before data, as every envelope writer puts them.
	walked, err := envelope.ReadPaths(unsafe.String(unsafe.SliceData(ev.Body), len(ev.Body)), &r.env, pipeline.DefaultMaxJSONDepth, pick, r.f[:])
	if err != nil {
		return false, fmt.Errorf("enrich: event %s: %w", ev.ID, err)
	}
	r.source = r.env.Source().Str
	v, known := vendors[r.source]
	if !known {
		if e.cfg.Unknown == "pass" {
			return false, nil
		}
		return false, fmt.Errorf("enrich: %w %q (want one of salesforce, hubspot, greenhouse, lever, sendgrid, mailgun, ses)", ErrUnknownSource, r.source)
	}
	data := r.env.Data()
	if !data.IsObject() {
		return false, fmt.Errorf("enrich: %s event %s has no data object", r.source, ev.ID)
	}
	r.m = v.read(r.env.Type().Str, data, &r.f, walked)
	return true, nil
}

// write appends the canonical event to r.buf (docs/canonical-events.md),
// its fields in the documented order.
func (e *Enrich) write(ev *pipeline.Event, r *record, now []byte) error {
	r.appendIdentity(ev.ID)
	domain, free := e.appendPerson(r)
	// A company record names its own domain (or web site): it is looked
	// up the way a person's address domain is.
	var hostBuf [64]byte
	var host []byte
	if r.m.domain != "" && r.f[slotDomain].Type == gjson.String {
		host = appendHost(hostBuf[:0], r.f[slotDomain].Str)
	}
	e.appendAccount(r, domain, free, host)
	var err error
	r.buf, err = appendTimes(r.buf, r.env.OccurredAt(), r.f[slotTime], r.env.SystemModifiedAt(), ev.Time)
	if err != nil {
		return fmt.Errorf("enrich: %s event %s: %w", r.source, ev.ID, err)
	}
	r.appendAttributes(host)
	if r.m.mail != nil {
		r.buf = appendMail(r.buf, r.m.mail, r.env.Type().Str, &r.f, slotAttrs+len(r.m.attrs))
	}
	r.buf = append(r.buf, `,"ingested_at":"`...)
	r.buf = append(r.buf, now...)
	r.buf = append(r.buf, `","pipeline":`...)
	r.buf = pipeline.AppendJSONString(r.buf, e.pipeline)
	r.buf = append(r.buf, '}')
	return nil
}

// appendIdentity opens the canonical event with its id (the envelope's,
// else the event's), source, type and entity.
func (r *record) appendIdentity(eventID string) {
	buf := append(r.buf, `{"id":`...)
	if id := r.env.ID().Str; id != "" {
		buf = pipeline.AppendJSONString(buf, id)
	} else {
		buf = pipeline.AppendJSONString(buf, eventID)
	}
	buf = append(buf, `,"source":`...)
	buf = pipeline.AppendJSONString(buf, r.source)
	buf = append(buf, `,"type":`...)
	buf = pipeline.AppendJSONString(buf, r.env.Type().Str)
	buf = append(buf, `,"entity":{"kind":"`...)
	buf = append(buf, r.m.kind...)
	buf = append(buf, `","id":`...)
	buf = pipeline.AppendJSONString(buf, r.f[slotEntity].String())
	r.buf = append(buf, '}')
}

// appendPerson appends the actor or recipient of a record about a person:
// the normalized address, its domain and whether that is free mail. It
// returns the domain (pointing into r.buf) and the classification.
func (e *Enrich) appendPerson(r *record) (domain string, free bool) {
	email := r.f[slotEmail].Str
	if email == "" {
		return "", false
	}
	buf := append(r.buf, `,"`...)
	buf = append(buf, r.m.role...)
	buf = append(buf, `":{"email":"`...)
	start := len(buf)
	buf = appendEmail(buf, email, e.cfg.StripTags)
	norm := buf[start:]
	if at := lastAt(norm); at >= 0 {
		d := norm[at+1:]
		_, free = e.freeMail[string(d)]
		buf = append(buf, `","domain":"`...)
		dstart := len(buf)
		buf = append(buf, d...)
		domain = unsafe.String(unsafe.SliceData(buf[dstart:]), len(buf)-dstart)
		buf = append(buf, `","free_mail":`...)
		if free {
			buf = append(buf, "true}"...)
		} else {
			buf = append(buf, "false}"...)
		}
	} else {
		buf = append(buf, `"}`...)
	}
	r.buf = buf
	return domain, free
}

// appendAccount appends account_id (the envelope's, else the account
// table's) and the account found for a corporate domain: the person's
// address domain, or a company record's host.
func (e *Enrich) appendAccount(r *record, domain string, free bool, host []byte) {
	var account []byte
	if e.accounts != nil {
		switch {
		case domain != "":
			if !free {
				account = e.accounts[domain]
			}
		case len(host) > 0:
			if _, fm := e.freeMail[string(host)]; !fm {
				account = e.accounts[string(host)]
			}
		}
	}
	buf := append(r.buf, `,"account_id":`...)
	switch {
	case r.env.AccountID().Str != "":
		buf = pipeline.AppendJSONString(buf, r.env.AccountID().Str)
	case account != nil && gjson.GetBytes(account, "account_id").Str != "":
		buf = pipeline.AppendJSONString(buf, gjson.GetBytes(account, "account_id").Str)
	default:
		buf = append(buf, "null"...)
	}
	if account != nil {
		buf = append(buf, `,"account":`...)
		buf = append(buf, account...)
	}
	r.buf = buf
}

// appendAttributes appends the attributes object: a company record's host
// as domain, then the mapping's attributes that are present and not null.
func (r *record) appendAttributes(host []byte) {
	buf := append(r.buf, `,"attributes":{`...)
	n := 0
	if len(host) > 0 {
		buf = append(buf, `"domain":"`...)
		buf = append(buf, host...)
		buf = append(buf, '"')
		n++
	}
	for i, a := range r.m.attrs {
		v := r.f[slotAttrs+i]
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = append(buf, '"')
		buf = append(buf, a.name...)
		buf = append(buf, `":`...)
		if each := r.m.each[slotAttrs+i]; each != "" {
			buf = appendEach(buf, v, each)
		} else {
			buf = append(buf, v.Raw...)
		}
	}
	r.buf = append(buf, '}')
}

const hex = "0123456789abcdef"
