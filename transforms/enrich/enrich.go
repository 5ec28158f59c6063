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
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/internal/eventtime"
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
func (e *Enrich) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	now := e.now().UTC()
	return pipeline.EachEvent(in, func(ev *pipeline.Event) error {
		return pipeline.Permanent(e.enrich(ev, now))
	})
}

// ErrUnknownSource is the reason for an event whose source is no known vendor.
var ErrUnknownSource = errors.New("unknown source")

func (e *Enrich) enrich(ev *pipeline.Event, now time.Time) error {
	if ev.Body == nil {
		return fmt.Errorf("enrich: event %s has no decoded body (add a decode step first)", ev.ID)
	}
	// Raw values (data fields) are copied into the canonical body as they
	// are: a deeply nested one would reach every recursive encoder after.
	if err := pipeline.CheckJSONDepth(ev.Body, pipeline.DefaultMaxJSONDepth); err != nil {
		return fmt.Errorf("enrich: event %s: %w", ev.ID, err)
	}
	// The body is only read while the new one is built, so the results may
	// point into it without copies.
	body := unsafe.String(unsafe.SliceData(ev.Body), len(ev.Body))
	var env envelope.Fields
	envelope.Read(body, &env)
	source := env.Source().Str
	v, ok := vendors[source]
	if !ok {
		if e.cfg.Unknown == "pass" {
			return nil
		}
		return fmt.Errorf("enrich: %w %q (want one of salesforce, hubspot, greenhouse, lever, sendgrid, mailgun, ses)", ErrUnknownSource, source)
	}
	data := env.Data()
	if !data.IsObject() {
		return fmt.Errorf("enrich: %s event %s has no data object", source, ev.ID)
	}
	var f [maxSlots]gjson.Result
	m := v.read(env.Type().Str, data, &f)
	buf := make([]byte, 0, 512)
	buf = append(buf, `{"id":`...)
	if env.ID().Str != "" {
		buf = pipeline.AppendJSONString(buf, env.ID().Str)
	} else {
		buf = pipeline.AppendJSONString(buf, ev.ID)
	}
	buf = append(buf, `,"source":`...)
	buf = pipeline.AppendJSONString(buf, source)
	buf = append(buf, `,"type":`...)
	buf = pipeline.AppendJSONString(buf, env.Type().Str)
	buf = append(buf, `,"entity":{"kind":"`...)
	buf = append(buf, m.kind...)
	buf = append(buf, `","id":`...)
	buf = pipeline.AppendJSONString(buf, f[slotEntity].String())
	buf = append(buf, '}')

	email := f[slotEmail].Str
	var domain string
	var free bool
	if email != "" {
		buf = append(buf, `,"`...)
		buf = append(buf, m.role...)
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
	}
	// A company record names its own domain (or web site): it is looked
	// up the way a person's address domain is.
	var hostBuf [64]byte
	var host []byte
	if m.domain != "" && f[slotDomain].Type == gjson.String {
		host = appendHost(hostBuf[:0], f[slotDomain].Str)
	}
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
	buf = append(buf, `,"account_id":`...)
	switch {
	case env.AccountID().Str != "":
		buf = pipeline.AppendJSONString(buf, env.AccountID().Str)
	case account != nil && gjson.GetBytes(account, "account_id").Str != "":
		buf = pipeline.AppendJSONString(buf, gjson.GetBytes(account, "account_id").Str)
	default:
		buf = append(buf, "null"...)
	}
	if account != nil {
		buf = append(buf, `,"account":`...)
		buf = append(buf, account...)
	}
	buf, err := appendTimes(buf, env.OccurredAt(), f[slotTime], env.SystemModifiedAt(), ev.Time)
	if err != nil {
		return fmt.Errorf("enrich: %s event %s: %w", source, ev.ID, err)
	}
	buf = append(buf, `,"attributes":{`...)
	n := 0
	if len(host) > 0 {
		buf = append(buf, `"domain":"`...)
		buf = append(buf, host...)
		buf = append(buf, '"')
		n++
	}
	for i, a := range m.attrs {
		v := f[slotAttrs+i]
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
		if each := m.each[slotAttrs+i]; each != "" {
			buf = appendEach(buf, v, each)
		} else {
			buf = append(buf, v.Raw...)
		}
	}
	buf = append(buf, '}')
	if m.mail != nil {
		buf = appendMail(buf, m.mail, env.Type().Str, &f, slotAttrs+len(m.attrs))
	}
	buf = append(buf, `,"ingested_at":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","pipeline":`...)
	buf = pipeline.AppendJSONString(buf, e.pipeline)
	buf = append(buf, '}')
	if e.cfg.Into != "" {
		return ev.SetRaw(e.cfg.Into, buf)
	}
	ev.Body = buf
	return nil
}

// appendTimes appends occurred_at (see occurredAt) and, when the envelope
// has one, system_modified_at.
func appendTimes(buf []byte, envelope, vendor, system gjson.Result, fallback time.Time) ([]byte, error) {
	buf = append(buf, `,"occurred_at":`...)
	t, err := occurredAt(envelope, vendor, fallback)
	if err != nil {
		return buf, err
	}
	if !t.IsZero() {
		buf = append(buf, '"')
		buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	} else {
		buf = append(buf, "null"...)
	}
	if system.Type == gjson.String {
		st, err := time.Parse(time.RFC3339Nano, system.Str)
		if err == nil {
			err = eventtime.Check(st)
		}
		if err != nil {
			return buf, fmt.Errorf("system_modified_at: %w", err)
		}
		buf = append(buf, `,"system_modified_at":"`...)
		buf = st.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	}
	return buf, nil
}

// occurredAt prefers the envelope's time, then the vendor's own, then the
// event time the source or decode step set. A time outside 1970..9999
// (a hostile `timestamp: 1e300`) is an error: the event is dead-lettered.
func occurredAt(envelope, v gjson.Result, fallback time.Time) (time.Time, error) {
	if envelope.Type == gjson.String {
		if t, err := time.Parse(time.RFC3339Nano, envelope.Str); err == nil {
			return t, eventtime.Check(t)
		}
	}
	switch v.Type {
	case gjson.String:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700"} {
			if t, err := time.Parse(layout, v.Str); err == nil {
				return t, eventtime.Check(t)
			}
		}
		if _, err := parseInt(v.Str); err == nil {
			return eventtime.Parse(v.Str, eventtime.Seconds)
		}
	case gjson.Number:
		// The digits as sent: Mailgun's 1772445607.318224 stays .318224.
		return eventtime.Number(v.Raw)
	}
	if fallback.IsZero() {
		return fallback, nil
	}
	return fallback, eventtime.Check(fallback)
}

func parseInt(s string) (int64, error) {
	var n int64
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}

// appendEmail appends the normalized address: trimmed, lowercased, and
// without +tag when strip is set. Only ASCII letters are lowercased.
func appendEmail(buf []byte, s string, strip bool) []byte {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strip && at > 0 && i < at && c == '+' {
			i = at - 1
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, `\u00`...)
			buf = append(buf, hex[c>>4], hex[c&15])
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// appendEach appends the JSON array of field f of every element of arr
// (gjson's "arr.#.f"), without building it as a string first. Elements
// without the field are left out.
func appendEach(buf []byte, arr gjson.Result, f string) []byte {
	buf = append(buf, '[')
	n := 0
	arr.ForEach(func(_, el gjson.Result) bool {
		if v := el.Get(f); v.Exists() && v.Type != gjson.Null {
			if n > 0 {
				buf = append(buf, ',')
			}
			n++
			buf = append(buf, v.Raw...)
		}
		return true
	})
	return append(buf, ']')
}

// appendHost appends the host of a domain or web site, ASCII-lowercased,
// without scheme, "www.", port, path or trailing dot:
// "https://www.Acme.com/about" → "acme.com". It appends nothing when the
// rest is not a host name (letters, digits, '-', '.', '_' or non-ASCII).
func appendHost(buf []byte, s string) []byte {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	if len(s) > 4 && strings.EqualFold(s[:4], "www.") {
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 { // an internationalized name: whole runes, lowercased
			if !utf8.ValidString(s) {
				return buf
			}
			s = strings.ToLower(s)
			break
		}
	}
	start := len(buf)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c >= 0x80:
		default:
			return buf[:start]
		}
		buf = append(buf, c)
	}
	return buf
}

func lastAt(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '@' {
			return i
		}
	}
	return -1
}

const hex = "0123456789abcdef"
