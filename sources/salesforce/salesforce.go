// Package salesforce is a source that polls Salesforce objects through the
// REST query API: SOQL ordered by SystemModstamp and Id from a cursor,
// nextRecordsUrl pagination, OAuth2 (client credentials or JWT bearer) with
// a fresh token on INVALID_SESSION_ID, and Sforce-Limit-Info respected.
package salesforce

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `salesforce` source's YAML.
type Config struct {
	poller.Config `yaml:",inline"`
	// InstanceURL is the org's My Domain, https://acme.my.salesforce.com.
	InstanceURL string   `yaml:"instance_url" required:"true"`
	APIVersion  string   `yaml:"api_version"`
	Objects     []Object `yaml:"objects" required:"true"`
	Auth        Auth     `yaml:"auth" required:"true"`
	// MaxAPIUsage is the share of the org's daily API requests
	// (Sforce-Limit-Info) above which polling pauses for APIUsagePause.
	MaxAPIUsage float64 `yaml:"max_api_usage"`
	// IncludeDeleted reads through queryAll, so records moved to the
	// recycle bin come as <object>.deleted events.
	IncludeDeleted bool              `yaml:"include_deleted"`
	APIUsagePause  pipeline.Duration `yaml:"api_usage_pause"`
	Timeout        pipeline.Duration `yaml:"timeout"`
}

// Object is one sObject to poll.
type Object struct {
	Name string `yaml:"name" required:"true"`
	// Fields to select; empty selects FIELDS(STANDARD). Id and
	// SystemModstamp are always added.
	Fields []string `yaml:"fields"`
	// KeyField is the field whose value partitions events (AccountId for
	// Contact and Opportunity, WhoId for Task, Id otherwise); Id when
	// empty in a record.
	KeyField string `yaml:"key_field"`
}

// Auth is the OAuth2 connected-app grant.
type Auth struct {
	// Grant is client_credentials (default) or jwt_bearer.
	Grant        string `yaml:"grant"`
	TokenURL     string `yaml:"token_url"`
	ClientID     string `yaml:"client_id" required:"true"`
	ClientSecret string `yaml:"client_secret"`
	// Username is the JWT subject (jwt_bearer).
	Username string `yaml:"username"`
	// PrivateKey is the PEM key whose certificate the connected app holds
	// (jwt_bearer).
	PrivateKey string `yaml:"private_key"`
	// Audience is the JWT aud: https://login.salesforce.com (default) or
	// https://test.salesforce.com for sandboxes.
	Audience string `yaml:"audience"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Config.SetDefaults()
	c.APIVersion = "v60.0"
	c.MaxAPIUsage = 0.9
	c.APIUsagePause = pipeline.Duration(5 * time.Minute)
	c.Timeout = pipeline.Duration(60 * time.Second)
	c.Auth.Grant = "client_credentials"
	c.Auth.Audience = "https://login.salesforce.com"
}

var (
	identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	fieldRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*|FIELDS\((STANDARD|ALL|CUSTOM)\))$`)
)

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	errs := []error{c.Config.Validate(), poller.CheckRequired("auth.client_id", c.Auth.ClientID)}
	if u, err := url.Parse(c.InstanceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, pipeline.FieldErrorf("instance_url", "must be an https URL such as https://acme.my.salesforce.com; got %q", c.InstanceURL))
	}
	if !regexp.MustCompile(`^v\d+\.\d$`).MatchString(c.APIVersion) {
		errs = append(errs, pipeline.FieldErrorf("api_version", "must look like v60.0; got %q", c.APIVersion))
	}
	seen := map[string]bool{}
	for i, o := range c.Objects {
		if !identRE.MatchString(o.Name) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d].name", i), "not an sObject name: %q", o.Name))
		}
		if seen[o.Name] {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d].name", i), "%s listed twice", o.Name))
		}
		seen[o.Name] = true
		for j, f := range o.Fields {
			if !fieldRE.MatchString(f) {
				errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d].fields[%d]", i, j), "not a field name: %q", f))
			}
		}
		if o.KeyField != "" && !fieldRE.MatchString(o.KeyField) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("objects[%d].key_field", i), "not a field name: %q", o.KeyField))
		}
	}
	if len(c.Objects) == 0 {
		errs = append(errs, pipeline.FieldErrorf("objects", "list at least one object"))
	}
	switch c.Auth.Grant {
	case "client_credentials":
		if c.Auth.ClientSecret == "" {
			errs = append(errs, pipeline.FieldErrorf("auth.client_secret", "required for the client_credentials grant"))
		}
	case "jwt_bearer":
		if c.Auth.Username == "" {
			errs = append(errs, pipeline.FieldErrorf("auth.username", "required for the jwt_bearer grant"))
		}
		if _, err := parseKey(c.Auth.PrivateKey); err != nil {
			errs = append(errs, pipeline.FieldErrorf("auth.private_key", "%v", err))
		}
	default:
		errs = append(errs, pipeline.FieldErrorf("auth.grant", "must be client_credentials or jwt_bearer; got %q", c.Auth.Grant))
	}
	if c.MaxAPIUsage <= 0 || c.MaxAPIUsage > 1 {
		errs = append(errs, pipeline.FieldErrorf("max_api_usage", "must be in (0, 1]"))
	}
	return errors.Join(errs...)
}

func parseKey(p string) ([]byte, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil, errors.New("must be a PEM private key (RSA, PKCS#1 or PKCS#8)")
	}
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
			return nil, errors.New("must be a PEM private key (RSA, PKCS#1 or PKCS#8)")
		}
	}
	return []byte(p), nil
}

// Register adds the salesforce source to r.
func Register(r *pipeline.Registry) {
	poller.Register(r, "salesforce", "Salesforce records modified since a saved cursor (REST query API, OAuth2)", New)
}

// New builds the source.
func New(bc pipeline.BuildContext, c Config) (*poller.Source, error) {
	cl, err := newClient(c, bc.Logger)
	if err != nil {
		return nil, err
	}
	v := poller.Vendor{Name: "salesforce", Sorted: true, Client: cl}
	for _, ob := range c.Objects {
		v.Objects = append(v.Objects, ob.Name)
	}
	return c.NewSource(bc, v)
}

type client struct {
	base, version string
	http          *http.Client
	tokens        *tokenCache
	objects       map[string]Object
	maxUsage      float64
	pause         time.Duration
	endpoint      string // query or queryAll
	log           *slog.Logger
}

func newClient(c Config, log *slog.Logger) (*client, error) {
	base := strings.TrimRight(c.InstanceURL, "/")
	tokenURL := c.Auth.TokenURL
	if tokenURL == "" {
		tokenURL = base + "/services/oauth2/token"
	}
	tc := &tokenCache{}
	switch c.Auth.Grant {
	case "jwt_bearer":
		key, err := parseKey(c.Auth.PrivateKey)
		if err != nil {
			return nil, err
		}
		jc := &jwt.Config{Email: c.Auth.ClientID, Subject: c.Auth.Username, PrivateKey: key, TokenURL: tokenURL, Audience: c.Auth.Audience, Expires: 3 * time.Minute}
		tc.fetch = func(ctx context.Context) (*oauth2.Token, error) { return jc.TokenSource(ctx).Token() }
	default:
		cc := &clientcredentials.Config{ClientID: c.Auth.ClientID, ClientSecret: c.Auth.ClientSecret, TokenURL: tokenURL}
		tc.fetch = cc.Token
	}
	cl := &client{base: base, version: c.APIVersion, http: &http.Client{Timeout: c.Timeout.D()}, tokens: tc,
		objects: map[string]Object{}, maxUsage: c.MaxAPIUsage, pause: c.APIUsagePause.D(), log: log, endpoint: "query"}
	if c.IncludeDeleted {
		cl.endpoint = "queryAll"
	}
	for _, o := range c.Objects {
		o.Fields = selectFields(o)
		cl.objects[o.Name] = o
	}
	return cl, nil
}

// defaultKeyField is the entity an object's events are partitioned by.
func defaultKeyField(object string) string {
	switch object {
	case "Contact", "Opportunity", "Case", "Contract", "Order":
		return "AccountId"
	case "Task", "Event":
		return "WhoId"
	}
	return "Id"
}

func selectFields(o Object) []string {
	if len(o.Fields) == 0 {
		return []string{"FIELDS(STANDARD)"}
	}
	fs := slices.Clone(o.Fields)
	key := o.KeyField
	if key == "" {
		key = defaultKeyField(o.Name)
	}
	for _, need := range []string{"Id", "SystemModstamp", key} {
		if !slices.ContainsFunc(fs, func(f string) bool { return strings.EqualFold(f, need) }) {
			fs = append(fs, need)
		}
	}
	return fs
}

// tokenCache holds the current access token; Salesforce tokens carry no
// expiry, so a 401 is what says to get a new one.
type tokenCache struct {
	fetch func(ctx context.Context) (*oauth2.Token, error)
	mu    sync.Mutex
	tok   *oauth2.Token
}

func (t *tokenCache) get(ctx context.Context) (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != nil && t.tok.Valid() {
		return t.tok, nil
	}
	tok, err := t.fetch(ctx)
	if err != nil {
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok && re.Response != nil && re.Response.StatusCode < 500 && re.Response.StatusCode != http.StatusTooManyRequests {
			return nil, pipeline.Permanent(fmt.Errorf("salesforce: token: %s %s", re.ErrorCode, re.ErrorDescription))
		}
		return nil, fmt.Errorf("salesforce: token: %w", err)
	}
	t.tok = tok
	return tok, nil
}

func (t *tokenCache) invalidate(old *oauth2.Token) {
	t.mu.Lock()
	if t.tok == old {
		t.tok = nil
	}
	t.mu.Unlock()
}

const soqlTime = "2006-01-02T15:04:05Z"

// SOQL is the query of one object from since.
func (c *client) SOQL(object string, since time.Time) string {
	if since.Before(time.Unix(0, 0)) {
		since = time.Unix(0, 0)
	}
	o := c.objects[object]
	// Whole seconds, rounded down: SOQL literals have no fraction, and the
	// records at the cursor's second are read again and dropped as seen.
	return "SELECT " + strings.Join(o.Fields, ", ") + " FROM " + object +
		" WHERE SystemModstamp >= " + since.UTC().Truncate(time.Second).Format(soqlTime) +
		" ORDER BY SystemModstamp, Id"
}

type queryResponse struct {
	TotalSize      int               `json:"totalSize"`
	Done           bool              `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

// Fetch runs the query (first page) or follows nextRecordsUrl.
func (c *client) Fetch(ctx context.Context, q poller.Query) (poller.Page, error) {
	o, ok := c.objects[q.Object]
	if !ok {
		return poller.Page{}, pipeline.Permanent(fmt.Errorf("salesforce: unknown object %q", q.Object))
	}
	u := c.base + "/services/data/" + c.version + "/" + c.endpoint + "?q=" + url.QueryEscape(c.SOQL(q.Object, q.Since))
	if q.Token != "" {
		// A saved cursor's token: checked again, it left this process.
		var err error
		if u, err = c.nextURL(q.Token); err != nil {
			return poller.Page{}, err
		}
	}
	resp, body, err := c.get(ctx, u)
	if err != nil {
		return poller.Page{}, err
	}
	var qr queryResponse
	if err := json.Unmarshal(body, &qr); err != nil {
		return poller.Page{}, fmt.Errorf("salesforce: query %s: decoding answer: %w", q.Object, err)
	}
	page := poller.Page{ServerTime: poller.ServerTime(resp.Header), Pause: poller.RateLimitWait(resp.Header, time.Now(), func(h http.Header, _ time.Time) time.Duration { return c.limitPause(h) })}
	if !qr.Done {
		if qr.NextRecordsURL == "" {
			return poller.Page{}, fmt.Errorf("salesforce: query %s: done is false without nextRecordsUrl", q.Object)
		}
		if _, err := c.nextURL(qr.NextRecordsURL); err != nil {
			return poller.Page{}, err
		}
		page.Next = qr.NextRecordsURL
	}
	keyField := o.KeyField
	if keyField == "" {
		keyField = defaultKeyField(q.Object)
	}
	for _, raw := range qr.Records {
		r, err := record(q.Object, keyField, raw)
		if err != nil {
			return poller.Page{}, err
		}
		page.Records = append(page.Records, r)
	}
	return page, nil
}

// nextURL is the URL of a nextRecordsUrl, which Salesforce gives as a path
// on the instance (/services/data/v60.0/query/01gRM…-2000). It is appended
// to instance_url, so anything but a plain path could name another host
// ("@evil:443/…", ".evil.example/…", "//evil/…") and receive the bearer
// token: such a link is a permanent error.
func (c *client) nextURL(next string) (string, error) {
	bad := func() (string, error) {
		return "", pipeline.Permanent(fmt.Errorf("salesforce: nextRecordsUrl %q is not a path on %s", next, c.base))
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\@") {
		return bad()
	}
	u, err := url.Parse(c.base + next)
	b, berr := url.Parse(c.base)
	if err != nil || berr != nil || u.Scheme != b.Scheme || u.Host != b.Host || u.User != nil {
		return bad()
	}
	return c.base + next, nil
}

var sfTimeLayouts = []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	var err error
	for _, l := range sfTimeLayouts {
		var t time.Time
		if t, err = time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

func record(object, keyField string, raw json.RawMessage) (poller.Record, error) {
	id := gjson.GetBytes(raw, "Id").String()
	stamp, err := parseTime(gjson.GetBytes(raw, "SystemModstamp").String())
	if id == "" || err != nil {
		return poller.Record{}, fmt.Errorf("salesforce: %s record without Id or SystemModstamp: %.200s", object, raw)
	}
	kind := "updated"
	switch created, modified := gjson.GetBytes(raw, "CreatedDate").String(), gjson.GetBytes(raw, "LastModifiedDate").String(); {
	case gjson.GetBytes(raw, "IsDeleted").Bool():
		kind = "deleted"
	case created != "" && created == modified:
		kind = "created"
	}
	account := gjson.GetBytes(raw, "AccountId").String()
	if object == "Account" {
		account = id
	}
	r := poller.Record{
		ID: id, Stamp: stamp, Type: strings.ToLower(object) + "." + kind,
		Key: gjson.GetBytes(raw, keyField).String(), Account: account, Data: raw,
	}
	// SystemModstamp (the cursor) also moves on system changes: the time
	// a person changed the record is LastModifiedDate, where the object
	// has one.
	if lm := gjson.GetBytes(raw, "LastModifiedDate").String(); lm != "" {
		if r.OccurredAt, err = parseTime(lm); err != nil {
			return poller.Record{}, fmt.Errorf("salesforce: %s record %s: LastModifiedDate %q is not a time", object, id, lm)
		}
	}
	return r, nil
}

// get sends an authorized GET; on 401 it takes a fresh token and tries
// once more.
func (c *client) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, pipeline.Permanent(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		resp, body, err := poller.Do(ctx, c.http, req)
		if err != nil {
			return nil, nil, fmt.Errorf("salesforce: %w", err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp, body, nil
		case resp.StatusCode == http.StatusUnauthorized:
			c.tokens.invalidate(tok)
			if attempt == 0 {
				c.log.Info("salesforce session expired, taking a new token")
				continue
			}
			return nil, nil, fmt.Errorf("salesforce: still unauthorized with a new token: %s", errorCode(body))
		}
		// Retry-After, else Sforce-Limit-Info above max_api_usage, on
		// every failed answer too.
		wait := poller.RateLimitWait(resp.Header, time.Now(), func(h http.Header, _ time.Time) time.Duration { return c.limitPause(h) })
		if resp.StatusCode == http.StatusForbidden && errorCode(body) == "REQUEST_LIMIT_EXCEEDED" {
			if wait <= 0 {
				wait = c.pause
			}
			return nil, nil, &poller.RetryAfterError{Wait: wait, Err: fmt.Errorf("salesforce: REQUEST_LIMIT_EXCEEDED")}
		}
		return nil, nil, poller.StatusErrorWait("salesforce", req, resp, body, wait)
	}
}

// errorCode is the errorCode of a Salesforce error body:
// [{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}].
func errorCode(body []byte) string {
	return gjson.GetBytes(body, "0.errorCode").String()
}

// limitPause reads Sforce-Limit-Info: api-usage=18/15000.
func (c *client) limitPause(h http.Header) time.Duration {
	for part := range strings.SplitSeq(h.Get("Sforce-Limit-Info"), ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "api-usage=")
		if !ok {
			continue
		}
		usedS, limitS, _ := strings.Cut(v, "/")
		used, err1 := strconv.ParseFloat(usedS, 64)
		limit, err2 := strconv.ParseFloat(limitS, 64)
		if err1 == nil && err2 == nil && limit > 0 && used/limit >= c.maxUsage {
			c.log.Warn("salesforce API usage above max_api_usage, pausing", "usage", v, "pause", c.pause)
			return c.pause
		}
	}
	return 0
}

// FetchOnce runs one query of cfg's client, for tests and diagnostics.
func FetchOnce(ctx context.Context, cfg Config, q poller.Query) (poller.Page, error) {
	c, err := newClient(cfg, pipeline.NewBuildContext("", "salesforce", nil, nil).Logger) // logs discarded
	if err != nil {
		return poller.Page{}, err
	}
	return c.Fetch(ctx, q)
}
