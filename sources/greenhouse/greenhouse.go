// Package greenhouse is a source that polls the Greenhouse Harvest API
// (candidates, applications, jobs) for records updated after a cursor,
// following RFC 5988 Link headers, with the API key as Basic auth and the
// X-RateLimit headers respected.
//
// Harvest lists are ordered by id, not by update time, so a cursor can
// only move when a whole query is read: to the time the query started
// (the server's Date), less the overlap.
package greenhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `greenhouse` source's YAML.
type Config struct {
	poller.Config `yaml:",inline"`
	// APIKey is the Harvest API key (Basic auth user, empty password).
	APIKey  string `yaml:"api_key" required:"true"`
	BaseURL string `yaml:"base_url"`
	// Objects to poll: candidates, applications, jobs.
	Objects []string          `yaml:"objects"`
	PerPage int               `yaml:"per_page"`
	Timeout pipeline.Duration `yaml:"timeout"`
}

// kind is how one Harvest collection is polled.
type kind struct {
	param, stamp, key, event string
}

var kinds = map[string]kind{
	"candidates":   {param: "updated_after", stamp: "updated_at", key: "id", event: "candidate"},
	"applications": {param: "last_activity_after", stamp: "last_activity_at", key: "candidate_id", event: "application"},
	"jobs":         {param: "updated_after", stamp: "updated_at", key: "id", event: "job"},
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	c.Overlap = pipeline.Duration(time.Minute)
	c.BaseURL = "https://harvest.greenhouse.io/v1"
	c.Objects = []string{"candidates", "applications", "jobs"}
	c.PerPage = 500
	c.Timeout = pipeline.Duration(60 * time.Second)
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	errs := []error{c.Config.Validate(), poller.CheckRequired("api_key", c.APIKey),
		poller.CheckBaseURL("base_url", c.BaseURL), poller.CheckPageSize("per_page", c.PerPage, 500)}
	if len(c.Objects) == 0 {
		errs = append(errs, pipeline.FieldErrorf("objects", "list at least one of candidates, applications, jobs"))
	}
	for i, o := range c.Objects {
		if _, ok := kinds[o]; !ok || slices.Index(c.Objects, o) != i {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d]", i), "must be candidates, applications or jobs, each once; got %q", o))
		}
	}
	return errors.Join(errs...)
}

// Register adds the greenhouse source to r.
func Register(r *pipeline.Registry) {
	poller.Register(r, "greenhouse", "Greenhouse Harvest candidates, applications and jobs updated since a saved cursor", New)
}

// New builds the source.
func New(bc pipeline.BuildContext, c Config) (*poller.Source, error) {
	base, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("greenhouse base_url %q: %w", c.BaseURL, err)
	}
	cl := &client{base: base, key: c.APIKey, perPage: c.PerPage, http: &http.Client{Timeout: c.Timeout.D()}, log: bc.Logger}
	return c.NewSource(bc, poller.Vendor{Name: "greenhouse", Objects: c.Objects, Client: cl})
}

type client struct {
	base    *url.URL
	key     string
	perPage int
	http    *http.Client
	log     *slog.Logger
}

// Fetch reads one page: the first of a query, or the Link header's next.
func (c *client) Fetch(ctx context.Context, q poller.Query) (poller.Page, error) {
	k, ok := kinds[q.Object]
	if !ok {
		return poller.Page{}, pipeline.Permanent(fmt.Errorf("greenhouse: unknown object %q", q.Object))
	}
	u := q.Token
	if u == "" {
		since := q.Since
		if since.Before(time.Unix(0, 0)) {
			since = time.Unix(0, 0)
		}
		v := url.Values{"per_page": {strconv.Itoa(c.perPage)}, "page": {"1"}, k.param: {since.UTC().Format(time.RFC3339)}}
		u = c.base.String() + "/" + q.Object + "?" + v.Encode()
	} else if nu, err := url.Parse(u); err != nil || nu.Host != c.base.Host {
		// Never send the API key anywhere else.
		return poller.Page{}, pipeline.Permanent(fmt.Errorf("greenhouse: next link %q is not on %s", u, c.base.Host))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return poller.Page{}, pipeline.Permanent(err)
	}
	req.SetBasicAuth(c.key, "")
	req.Header.Set("Accept", "application/json")
	resp, body, err := poller.Do(ctx, c.http, req)
	if err != nil {
		return poller.Page{}, fmt.Errorf("greenhouse: %w", err)
	}
	wait := poller.RateLimitWait(resp.Header, time.Now(), rateLimitPause)
	if resp.StatusCode != http.StatusOK {
		return poller.Page{}, poller.StatusErrorWait("greenhouse", req, resp, body, wait)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return poller.Page{}, fmt.Errorf("greenhouse: %s: decoding answer: %w", q.Object, err)
	}
	page := poller.Page{Next: poller.NextLink(resp.Header), ServerTime: poller.ServerTime(resp.Header), Pause: wait}
	for _, raw := range raws {
		id := gjson.GetBytes(raw, "id").String()
		st := gjson.GetBytes(raw, k.stamp).String()
		stamp, err := time.Parse(time.RFC3339Nano, st)
		if id == "" || err != nil {
			return poller.Page{}, fmt.Errorf("greenhouse: %s record without id or %s: %.200s", q.Object, k.stamp, raw)
		}
		ev := "updated"
		if created := gjson.GetBytes(raw, "created_at").String(); created != "" && created == st {
			ev = "created"
		}
		page.Records = append(page.Records, poller.Record{ID: id, Stamp: stamp.UTC(), Type: k.event + "." + ev, Key: gjson.GetBytes(raw, k.key).String(), Data: raw})
	}
	return page, nil
}

// rateLimitPause waits for the next window when X-RateLimit-Remaining
// reaches 0: until X-RateLimit-Reset, else 10 seconds (Harvest counts
// requests per 10 seconds).
func rateLimitPause(h http.Header, now time.Time) time.Duration {
	rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if err != nil || rem > 0 {
		return 0
	}
	return poller.ResetWait(h.Get("X-RateLimit-Reset"), now, 10*time.Second)
}
