// Package lever is a source that polls Lever opportunities updated since a
// cursor (updated_at_start), following the `next` offset token, with the
// API key as Basic auth.
//
// Lever does not order opportunities by update time, so a cursor can only
// move when a whole query is read: to the time the query started (the
// server's Date), less the overlap.
package lever

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `lever` source's YAML.
type Config struct {
	poller.Config `yaml:",inline"`
	// APIKey is the Lever API key (Basic auth user, empty password).
	APIKey  string            `yaml:"api_key" required:"true"`
	BaseURL string            `yaml:"base_url"`
	Limit   int               `yaml:"limit"`
	Timeout pipeline.Duration `yaml:"timeout"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	c.Overlap = pipeline.Duration(time.Minute)
	c.BaseURL = "https://api.lever.co/v1"
	c.Limit = 100
	c.Timeout = pipeline.Duration(60 * time.Second)
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	return errors.Join(c.Config.Validate(), poller.CheckRequired("api_key", c.APIKey),
		poller.CheckBaseURL("base_url", c.BaseURL), poller.CheckPageSize("limit", c.Limit, 100))
}

// Register adds the lever source to r.
func Register(r *pipeline.Registry) {
	poller.Register(r, "lever", "Lever opportunities updated since a saved cursor", New)
}

// New builds the source.
func New(bc pipeline.BuildContext, c Config) (*poller.Source, error) {
	cl := &client{base: strings.TrimRight(c.BaseURL, "/"), key: c.APIKey, limit: c.Limit, http: &http.Client{Timeout: c.Timeout.D()}}
	return c.NewSource(bc, poller.Vendor{Name: "lever", Objects: []string{"opportunities"}, Client: cl})
}

type client struct {
	base, key string
	limit     int
	http      *http.Client
}

type listResponse struct {
	Data    []json.RawMessage `json:"data"`
	HasNext bool              `json:"hasNext"`
	Next    string            `json:"next"`
}

// token carries the query's updated_at_start with the offset, so every
// page of one query asks the same question.
type token struct {
	Since  int64  `json:"s"`
	Offset string `json:"o"`
}

// Fetch reads one page of opportunities.
func (c *client) Fetch(ctx context.Context, q poller.Query) (poller.Page, error) {
	tk := token{Since: max(q.Since.UnixMilli(), 0)}
	if q.Token != "" {
		if err := json.Unmarshal([]byte(q.Token), &tk); err != nil {
			return poller.Page{}, pipeline.Permanent(fmt.Errorf("lever: bad page token: %w", err))
		}
	}
	v := url.Values{"updated_at_start": {strconv.FormatInt(tk.Since, 10)}, "limit": {strconv.Itoa(c.limit)}}
	if tk.Offset != "" {
		v.Set("offset", tk.Offset)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+q.Object+"?"+v.Encode(), nil)
	if err != nil {
		return poller.Page{}, pipeline.Permanent(err)
	}
	req.SetBasicAuth(c.key, "")
	req.Header.Set("Accept", "application/json")
	resp, body, err := poller.Do(ctx, c.http, req)
	if err != nil {
		return poller.Page{}, fmt.Errorf("lever: %w", err)
	}
	// Lever answers 429 past its request rate and 503 when overloaded,
	// with Retry-After when it knows how long: waited on any status.
	wait := poller.RateLimitWait(resp.Header, time.Now(), nil)
	if resp.StatusCode != http.StatusOK {
		return poller.Page{}, poller.StatusErrorWait("lever", req, resp, body, wait)
	}
	var lr listResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		return poller.Page{}, fmt.Errorf("lever: %s: decoding answer: %w", q.Object, err)
	}
	page := poller.Page{ServerTime: poller.ServerTime(resp.Header), Pause: wait}
	if lr.HasNext && lr.Next != "" {
		b, _ := json.Marshal(token{Since: tk.Since, Offset: lr.Next})
		page.Next = string(b)
	}
	for _, raw := range lr.Data {
		id := gjson.GetBytes(raw, "id").String()
		upd := gjson.GetBytes(raw, "updatedAt")
		var stamp time.Time
		if upd.Type == gjson.Number {
			stamp, err = eventtime.Parse(upd.Raw, eventtime.Millis)
		}
		if id == "" || upd.Type != gjson.Number || err != nil {
			return poller.Page{}, fmt.Errorf("lever: opportunity without id or a valid updatedAt: %.200s", raw)
		}
		ev := "updated"
		if gjson.GetBytes(raw, "createdAt").Int() == upd.Int() {
			ev = "created"
		}
		page.Records = append(page.Records, poller.Record{
			ID: id, Stamp: stamp, Type: "opportunity." + ev,
			Key: gjson.GetBytes(raw, "contact").String(), Data: raw,
		})
	}
	return page, nil
}
