// Package hubspot is a source that polls HubSpot CRM objects through the
// CRM v3 search API: records with a last-modified date at or after the
// cursor, sorted ascending, authenticated with a private-app token.
//
// Paging re-anchors: when a page ends on a later modification time than the
// query started from, the next request is a new search from that time
// rather than `after` the previous page. `after` is used only while a page
// ends on the very time the search started from (ties), and never past the
// 10,000 results one search can page through. Re-anchoring also keeps a
// record edited mid-paging (it moves to the end of the sorted result) from
// shifting an unread record out of the offset window.
package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
)

// SearchLimit is the most results one HubSpot search can page through.
const SearchLimit = 10000

// Config is the `hubspot` source's YAML.
type Config struct {
	poller.Config `yaml:",inline"`
	// Token is the private app's access token (pat-…), from ${VAR}.
	Token   string   `yaml:"token" required:"true"`
	BaseURL string   `yaml:"base_url"`
	Objects []Object `yaml:"objects" required:"true"`
	// PageSize is the search limit per request (at most 200).
	PageSize int               `yaml:"page_size"`
	Timeout  pipeline.Duration `yaml:"timeout"`
}

// Object is one CRM object type to poll.
type Object struct {
	// Name is the object type: contacts, companies, deals, tickets, or a
	// custom object's type id.
	Name       string   `yaml:"name" required:"true"`
	Properties []string `yaml:"properties"`
	// KeyProperty partitions events; the record id when empty or unset.
	KeyProperty string `yaml:"key_property"`
	// AccountProperty is the company the record belongs to
	// (associatedcompanyid for contacts by default).
	AccountProperty string `yaml:"account_property"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	c.BaseURL = "https://api.hubapi.com"
	c.PageSize = 100
	c.Timeout = pipeline.Duration(30 * time.Second)
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	errs := []error{c.Config.Validate(), poller.CheckRequired("token", c.Token),
		poller.CheckBaseURL("base_url", c.BaseURL), poller.CheckPageSize("page_size", c.PageSize, 200)}
	if len(c.Objects) == 0 {
		errs = append(errs, pipeline.FieldErrorf("objects", "list at least one object"))
	}
	seen := map[string]bool{}
	for i, o := range c.Objects {
		if !nameRE.MatchString(o.Name) || seen[o.Name] {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d].name", i), "not an object type, or listed twice: %q", o.Name))
		}
		seen[o.Name] = true
	}
	return errors.Join(errs...)
}

// Register adds the hubspot source to r.
func Register(r *pipeline.Registry) {
	poller.Register(r, "hubspot", "HubSpot CRM records modified since a saved cursor (CRM v3 search API)", New)
}

// New builds the source.
func New(bc pipeline.BuildContext, c Config) (*poller.Source, error) {
	v := poller.Vendor{Name: "hubspot", Sorted: true, Client: newClient(c, bc.Logger)}
	for _, ob := range c.Objects {
		v.Objects = append(v.Objects, ob.Name)
	}
	return c.NewSource(bc, v)
}

type client struct {
	base, token string
	limit       int
	http        *http.Client
	objects     map[string]Object
	log         *slog.Logger
}

func newClient(c Config, log *slog.Logger) *client {
	cl := &client{base: strings.TrimRight(c.BaseURL, "/"), token: c.Token, limit: c.PageSize, http: &http.Client{Timeout: c.Timeout.D()}, objects: map[string]Object{}, log: log}
	for _, o := range c.Objects {
		if o.AccountProperty == "" && o.Name == "contacts" {
			o.AccountProperty = "associatedcompanyid"
		}
		props := slices.Clone(o.Properties)
		for _, p := range []string{modifiedProperty(o.Name), "createdate", o.KeyProperty, o.AccountProperty} {
			if p != "" && !slices.Contains(props, p) {
				props = append(props, p)
			}
		}
		o.Properties = props
		cl.objects[o.Name] = o
	}
	return cl
}

// modifiedProperty is the last-modified property search filters on:
// contacts name it lastmodifieddate, every other object hs_lastmodifieddate.
func modifiedProperty(object string) string {
	if object == "contacts" {
		return "lastmodifieddate"
	}
	return "hs_lastmodifieddate"
}

func singular(object string) string {
	switch object {
	case "contacts":
		return "contact"
	case "companies":
		return "company"
	case "deals":
		return "deal"
	case "tickets":
		return "ticket"
	}
	return strings.TrimSuffix(object, "s")
}

// token is the page token: the search's anchor (ms) and its after.
type token struct {
	Anchor int64  `json:"a"`
	After  string `json:"f,omitempty"`
}

type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups"`
	Sorts        []sort        `json:"sorts"`
	Properties   []string      `json:"properties"`
	Limit        int           `json:"limit"`
	After        string        `json:"after,omitempty"`
}

type filterGroup struct {
	Filters []filter `json:"filters"`
}

type filter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value"`
}

type sort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

type searchResponse struct {
	Total   int               `json:"total"`
	Results []json.RawMessage `json:"results"`
	Paging  *struct {
		Next *struct {
			After string `json:"after"`
		} `json:"next"`
	} `json:"paging"`
}

// Fetch runs one search request.
func (c *client) Fetch(ctx context.Context, q poller.Query) (poller.Page, error) {
	o, ok := c.objects[q.Object]
	if !ok {
		return poller.Page{}, pipeline.Permanent(fmt.Errorf("hubspot: unknown object %q", q.Object))
	}
	tk := token{Anchor: max(q.Since.UnixMilli(), 0)}
	if q.Token != "" {
		if err := json.Unmarshal([]byte(q.Token), &tk); err != nil {
			return poller.Page{}, pipeline.Permanent(fmt.Errorf("hubspot: bad page token: %w", err))
		}
	}
	prop := modifiedProperty(q.Object)
	body, _ := json.Marshal(searchRequest{
		FilterGroups: []filterGroup{{Filters: []filter{{PropertyName: prop, Operator: "GTE", Value: strconv.FormatInt(tk.Anchor, 10)}}}},
		Sorts:        []sort{{PropertyName: prop, Direction: "ASCENDING"}},
		Properties:   o.Properties, Limit: c.limit, After: tk.After,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/crm/v3/objects/"+url.PathEscape(q.Object)+"/search", bytes.NewReader(body))
	if err != nil {
		return poller.Page{}, pipeline.Permanent(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, rb, err := poller.Do(ctx, c.http, req)
	if err != nil {
		return poller.Page{}, fmt.Errorf("hubspot: %w", err)
	}
	// Retry-After, else the budget headers, on every answer: a 200 with
	// nothing left pauses the next request as a 429 does.
	wait := poller.RateLimitWait(resp.Header, time.Now(), rateLimitPause)
	if resp.StatusCode == http.StatusTooManyRequests {
		// The search API allows a few requests per second: the default
		// wait is one second when no header names one.
		if wait <= 0 {
			wait = time.Second
		}
		return poller.Page{}, &poller.RetryAfterError{Wait: wait,
			Err: fmt.Errorf("hubspot: %s: %s", resp.Status, gjson.GetBytes(rb, "message").String())}
	}
	if resp.StatusCode != http.StatusOK {
		return poller.Page{}, poller.StatusErrorWait("hubspot", req, resp, rb, wait)
	}
	var sr searchResponse
	if err := json.Unmarshal(rb, &sr); err != nil {
		return poller.Page{}, fmt.Errorf("hubspot: search %s: decoding answer: %w", q.Object, err)
	}
	page := poller.Page{ServerTime: poller.ServerTime(resp.Header), Pause: wait}
	for _, raw := range sr.Results {
		r, err := record(o, prop, raw)
		if err != nil {
			return poller.Page{}, err
		}
		page.Records = append(page.Records, r)
	}
	if sr.Paging != nil && sr.Paging.Next != nil && sr.Paging.Next.After != "" && len(page.Records) > 0 {
		next := token{Anchor: tk.Anchor}
		last := page.Records[len(page.Records)-1].Stamp.UnixMilli()
		after, _ := strconv.Atoi(sr.Paging.Next.After)
		switch {
		case last > tk.Anchor:
			next.Anchor = last // re-anchor: records at `last` come again and are dropped as seen
		case after+c.limit <= SearchLimit:
			next.After = sr.Paging.Next.After
		default:
			// More than 10,000 records share one millisecond: HubSpot cannot
			// page further, so step past it.
			c.log.Error("hubspot: over 10,000 records modified in one millisecond; records past the search limit are skipped", "object", q.Object, "at", time.UnixMilli(last))
			next.Anchor = last + 1
		}
		b, _ := json.Marshal(next)
		page.Next = string(b)
	}
	return page, nil
}

// rateLimitPause waits out the interval when the burst headers say
// nothing is left (X-HubSpot-RateLimit-Remaining: 0): the
// X-HubSpot-RateLimit-Interval-Milliseconds window, else a second.
func rateLimitPause(h http.Header, _ time.Time) time.Duration {
	rem, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Remaining"))
	if err != nil || rem > 0 {
		return 0
	}
	ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds"))
	if err != nil || ms <= 0 {
		return time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	return time.Time{}, false
}

func record(o Object, prop string, raw json.RawMessage) (poller.Record, error) {
	id := gjson.GetBytes(raw, "id").String()
	stamp, ok := parseTime(gjson.GetBytes(raw, "properties."+prop).String())
	if !ok {
		stamp, ok = parseTime(gjson.GetBytes(raw, "updatedAt").String())
	}
	if id == "" || !ok {
		return poller.Record{}, fmt.Errorf("hubspot: %s result without id or modification time: %.200s", o.Name, raw)
	}
	kind := "updated"
	switch {
	case gjson.GetBytes(raw, "archived").Bool():
		kind = "deleted"
	case gjson.GetBytes(raw, "createdAt").String() == gjson.GetBytes(raw, "updatedAt").String():
		kind = "created"
	}
	r := poller.Record{ID: id, Stamp: stamp, Type: singular(o.Name) + "." + kind, Data: raw}
	if o.KeyProperty != "" {
		r.Key = gjson.GetBytes(raw, "properties."+o.KeyProperty).String()
	}
	if o.AccountProperty != "" {
		r.Account = gjson.GetBytes(raw, "properties."+o.AccountProperty).String()
	}
	if o.Name == "companies" && r.Account == "" {
		r.Account = id
	}
	return r, nil
}
