package webhooks

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/redisconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `webhooks` source's YAML.
type Config struct {
	// Listen is the host:port the webhook server binds in Start.
	Listen string `yaml:"listen" required:"true"`
	// PathPrefix is prepended to every route: {path_prefix}/sendgrid,
	// {path_prefix}/mailgun, {path_prefix}/ses (each also with /{account}).
	PathPrefix string `yaml:"path_prefix"`
	// MaxBodyBytes bounds one request body; a larger one is answered 413.
	MaxBodyBytes pipeline.ByteSize `yaml:"max_body_bytes"`
	// AckTimeout is how long a request waits for its events to be durably
	// written (queueing included) before it is answered 503.
	AckTimeout pipeline.Duration `yaml:"ack_timeout"`
	// ReadTimeout bounds reading a request's headers and body.
	ReadTimeout pipeline.Duration `yaml:"read_timeout"`
	// QueueSize is how many requests may wait for the pipeline to take
	// them; when it is full a request waits up to ack_timeout, then 503.
	QueueSize int `yaml:"queue_size"`
	// MaxConcurrent bounds the requests being read or waiting for their
	// ack; one more is answered 503 at once. With max_body_bytes it bounds
	// the memory requests hold.
	MaxConcurrent int `yaml:"max_concurrent"`
	// AccountID is the envelope's account_id when the route names none.
	AccountID string `yaml:"account_id"`
	// Accounts, when set, lists the account ids a route may name
	// ({path_prefix}/{provider}/{account}); others are answered 404.
	Accounts []string `yaml:"accounts"`

	SendGrid *SendGridConfig `yaml:"sendgrid"`
	Mailgun  *MailgunConfig  `yaml:"mailgun"`
	SES      *SESConfig      `yaml:"ses"`
}

// SendGridConfig enables the SendGrid Event Webhook route.
type SendGridConfig struct {
	// PublicKey is the signed-webhook verification key as SendGrid shows
	// it (base64 DER), or a PEM "PUBLIC KEY" block. It verifies requests
	// on routes without an account, and on every account's route unless
	// account_keys is set.
	PublicKey string `yaml:"public_key"`
	// AccountKeys, when set, binds each account's route to its own key:
	// a request on {path_prefix}/sendgrid/{account} is verified only with
	// that account's key, and an account not listed is answered 404.
	AccountKeys map[string]string `yaml:"account_keys"`
	// MaxAge (default 10m), ReplayCapacity, RetryWindow (default 25h:
	// SendGrid retries for 24 hours) and ReplayStore: see ReplayConfig.
	ReplayConfig `yaml:",inline"`

	key         *ecdsa.PublicKey
	accountKeys map[string]*ecdsa.PublicKey
}

// MailgunConfig enables the Mailgun webhook route.
type MailgunConfig struct {
	// SigningKey is the HTTP webhook signing key of the Mailgun account.
	// It verifies requests on routes without an account, and on every
	// account's route unless account_keys is set.
	SigningKey string `yaml:"signing_key"`
	// AccountKeys, when set, binds each account's route to its own
	// signing key (account → key), as SendGridConfig.AccountKeys.
	AccountKeys map[string]string `yaml:"account_keys"`
	// MaxAge (default 5m), ReplayCapacity, RetryWindow (default 9h,
	// covering Mailgun's ~8h retry schedule) and ReplayStore: see
	// ReplayConfig.
	ReplayConfig `yaml:",inline"`
}

// ReplayConfig is the freshness and replay protection every provider's
// section carries: a signed request is accepted only while its signed
// timestamp is within max_age of now, and only once (Mailgun: its token;
// SendGrid: its signed timestamp and body; SNS: its MessageId). A request
// we answered 5xx is remembered with the hash of what was signed, and the
// provider's identical retry is accepted within retry_window even when
// its timestamp is stale by then.
type ReplayConfig struct {
	// MaxAge rejects signatures whose timestamp is further than this from
	// now, in either direction (0: the provider's default).
	MaxAge pipeline.Duration `yaml:"max_age"`
	// ReplayCapacity bounds the requests remembered in memory (default
	// 200000). They are remembered until their timestamp is older than
	// max_age (after that the timestamp check rejects them); a full set
	// answers 503.
	ReplayCapacity int `yaml:"replay_capacity"`
	// RetryWindow is how long a request we answered 5xx stays acceptable
	// when the provider retries it unchanged, with its by then stale
	// signature (0: the provider's default).
	RetryWindow pipeline.Duration `yaml:"retry_window"`
	// ReplayStore, when set, keeps what was seen in a store all replicas
	// share instead of in this process's memory (replay_capacity then does
	// not apply).
	ReplayStore *ReplayStoreConfig `yaml:"replay_store"`
}

// replayDefaults are one provider's ReplayConfig defaults.
type replayDefaults struct {
	maxAge, retryWindow time.Duration
	prefix              string
}

var (
	sendgridReplay = replayDefaults{10 * time.Minute, 25 * time.Hour, "sluice:sendgrid:"}
	mailgunReplay  = replayDefaults{5 * time.Minute, 9 * time.Hour, "sluice:mailgun:"}
	// SNS retries an HTTP/S delivery with its original Timestamp for at
	// most an hour (the delivery policy's limit); the rest is room for
	// publishing delays and clock skew.
	sesReplay = replayDefaults{90 * time.Minute, 2 * time.Hour, "sluice:ses:"}
)

// fill puts d's defaults into zero values and checks the rest. It is not
// named Validate so that the sections embedding it keep their own.
func (c *ReplayConfig) fill(d replayDefaults) error {
	if c.MaxAge < 0 {
		return pipeline.FieldErrorf("max_age", "must be positive (0: the default, %s)", d.maxAge)
	}
	if c.MaxAge == 0 {
		c.MaxAge = pipeline.Duration(d.maxAge)
	}
	if c.ReplayCapacity < 0 {
		return pipeline.FieldErrorf("replay_capacity", "must be at least 1")
	}
	if c.ReplayCapacity == 0 {
		c.ReplayCapacity = defaultReplayCapacity
	}
	if c.RetryWindow <= 0 {
		c.RetryWindow = pipeline.Duration(d.retryWindow)
	}
	if c.ReplayStore == nil {
		return nil
	}
	if r := c.ReplayStore.Redis; r != nil && r.Prefix == "" {
		r.Prefix = d.prefix
	}
	return underField("replay_store.", c.ReplayStore.Validate())
}

// ReplayStoreConfig chooses the shared token store: redis is the one there
// is.
type ReplayStoreConfig struct {
	Redis *RedisReplayStoreConfig `yaml:"redis"`
}

// RedisReplayStoreConfig keeps Mailgun tokens in Redis: addr, username,
// password, db and timeout (one reserve or settle round trip, default 1s),
// plus tls and prefix.
type RedisReplayStoreConfig struct {
	redisconn.Config `yaml:",inline"`
	TLS              *pipeline.TLSConfig `yaml:"tls"`
	// Prefix is prepended to every token's key (default "sluice:mailgun:").
	// The replicas of one deployment share it: a token one of them took is
	// a replay at the others.
	Prefix string `yaml:"prefix"`
}

// SESConfig enables the Amazon SES (via SNS) route.
type SESConfig struct {
	// Regions the SNS topics may be in; certificate and subscribe URLs
	// must be on sns.<region>.amazonaws.com for one of them. Empty: any.
	Regions []string `yaml:"regions"`
	// TopicARNs are the topics accepted on routes without an account
	// (and on every account's route unless account_topics is set). One of
	// topic_arns, account_topics or allow_any_topic is required.
	TopicARNs []string `yaml:"topic_arns"`
	// AccountTopics, when set, binds each account's route to its own
	// topics: {path_prefix}/ses/{account} accepts only that account's
	// topics, and an account not listed is answered 404.
	AccountTopics map[string][]string `yaml:"account_topics"`
	// AllowAnyTopic accepts (and confirms subscriptions of) any AWS
	// account's topic; `sluice validate` warns about it.
	AllowAnyTopic bool `yaml:"allow_any_topic"`
	// ConfirmSubscriptions GETs SubscribeURL of a verified
	// SubscriptionConfirmation (default true).
	ConfirmSubscriptions *bool `yaml:"confirm_subscriptions"`
	// FetchTimeout bounds fetching a signing certificate or confirming
	// a subscription (default 5s).
	FetchTimeout pipeline.Duration `yaml:"fetch_timeout"`
	// MaxAge (default 1h30m) bounds the age of the SNS Timestamp, and a
	// MessageId is accepted once within it; RetryWindow defaults to 2h.
	// See ReplayConfig.
	ReplayConfig `yaml:",inline"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.PathPrefix = "/webhooks"
	c.MaxBodyBytes = 1 << 20
	c.AckTimeout = pipeline.Duration(10 * time.Second)
	c.ReadTimeout = pipeline.Duration(10 * time.Second)
	c.QueueSize = 64
	c.MaxConcurrent = 128
}

// Provider sections are pointers (absent: route disabled), which the
// decoder allocates without calling SetDefaults; their Validate fills zero
// values with the defaults instead.
const (
	defaultReplayCapacity = 200000
	defaultFetchTimeout   = 5 * time.Second
	defaultRedisTimeout   = time.Second
)

// accountRule is accountRE in words. An account starts with a letter, a
// digit or _, so that ".", ".." and "..." are never accounts.
const accountRule = "must be 1-128 of A-Z a-z 0-9 _ . : -, starting with a letter, a digit or _"

var (
	accountRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); c.Listen != "" && err != nil {
		errs = append(errs, pipeline.FieldErrorf("listen", "must be host:port: %v", err))
	}
	if c.PathPrefix != "" && (!strings.HasPrefix(c.PathPrefix, "/") || strings.HasSuffix(c.PathPrefix, "/") || strings.ContainsAny(c.PathPrefix, "{} ")) {
		errs = append(errs, pipeline.FieldErrorf("path_prefix", "must start with / and not end with / (e.g. /webhooks); got %q", c.PathPrefix))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, pipeline.FieldErrorf("max_body_bytes", "must be more than 0"))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("ack_timeout", "must be more than 0"))
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf("read_timeout", "must be more than 0"))
	}
	if c.QueueSize < 1 {
		errs = append(errs, pipeline.FieldErrorf("queue_size", "must be at least 1"))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, pipeline.FieldErrorf("max_concurrent", "must be at least 1"))
	}
	if c.AccountID != "" && !accountRE.MatchString(c.AccountID) {
		errs = append(errs, pipeline.FieldErrorf("account_id", accountRule))
	}
	for i, a := range c.Accounts {
		if !accountRE.MatchString(a) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("accounts[%d]", i), accountRule))
		}
	}
	if c.SendGrid == nil && c.Mailgun == nil && c.SES == nil {
		errs = append(errs, pipeline.FieldErrorf("sendgrid", "enable at least one provider: sendgrid, mailgun or ses"))
	}
	return errors.Join(errs...)
}

// Validate parses the public keys and fills the replay defaults.
func (c *SendGridConfig) Validate() error {
	var errs []error
	if c.PublicKey == "" && len(c.AccountKeys) == 0 {
		errs = append(errs, pipeline.FieldErrorf("public_key", "required field is missing (or give each account its key in account_keys)"))
	}
	if c.PublicKey != "" {
		k, err := parseECDSAPublicKey(c.PublicKey)
		if err != nil {
			errs = append(errs, pipeline.FieldErrorf("public_key", "%v", err))
		}
		c.key = k
	}
	c.accountKeys = map[string]*ecdsa.PublicKey{}
	for _, a := range slices.Sorted(maps.Keys(c.AccountKeys)) {
		field := "account_keys." + a
		if !accountRE.MatchString(a) {
			errs = append(errs, pipeline.FieldErrorf(field, "account %q: %s", a, accountRule))
			continue
		}
		k, err := parseECDSAPublicKey(c.AccountKeys[a])
		if err != nil {
			errs = append(errs, pipeline.FieldErrorf(field, "%v", err))
			continue
		}
		c.accountKeys[a] = k
	}
	errs = append(errs, c.fill(sendgridReplay))
	return errors.Join(errs...)
}

// Validate checks the keys and fills the replay defaults.
func (c *MailgunConfig) Validate() error {
	var errs []error
	if c.SigningKey == "" && len(c.AccountKeys) == 0 {
		errs = append(errs, pipeline.FieldErrorf("signing_key", "required field is missing (or give each account its key in account_keys)"))
	}
	for _, a := range slices.Sorted(maps.Keys(c.AccountKeys)) {
		switch {
		case !accountRE.MatchString(a):
			errs = append(errs, pipeline.FieldErrorf("account_keys."+a, "account %q: %s", a, accountRule))
		case c.AccountKeys[a] == "":
			errs = append(errs, pipeline.FieldErrorf("account_keys."+a, "is empty"))
		}
	}
	errs = append(errs, c.fill(mailgunReplay))
	return errors.Join(errs...)
}

// Validate requires a store.
func (c *ReplayStoreConfig) Validate() error {
	if c.Redis == nil {
		return pipeline.FieldErrorf("redis", "is required: the shared replay store is redis (omit replay_store to keep tokens in memory)")
	}
	return underField("redis.", c.Redis.Validate())
}

// Validate fills the defaults and checks the connection settings; it does
// not dial.
func (c *RedisReplayStoreConfig) Validate() error {
	if c.Timeout == 0 {
		c.Timeout = pipeline.Duration(defaultRedisTimeout)
	}
	errs := c.Check("")
	if c.TLS != nil {
		errs = append(errs, underField("tls.", c.TLS.Validate()))
	}
	return errors.Join(errs...)
}

// underField puts the FieldErrors in err under prefix ("redis."), so a
// section's Validate that checks its subsections names the full key when
// it is called outside the decoder (New); the decoder, which validated the
// subsections already, drops the repeats.
func underField(prefix string, err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if fe, ok := errors.AsType[*pipeline.FieldError](e); ok {
			e = &pipeline.FieldError{Field: prefix + fe.Field, Msg: fe.Msg}
		}
		out = append(out, e)
	}
	if err != nil {
		walk(err)
	}
	return errors.Join(out...)
}

// Validate checks regions and topic ARNs, requires a topic rule, and
// fills the defaults.
func (c *SESConfig) Validate() error {
	var errs []error
	for i, r := range c.Regions {
		if !regionRE.MatchString(r) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("regions[%d]", i), "%q is not an AWS region name like us-east-1", r))
		}
	}
	checkARNs := func(field string, arns []string) {
		for i, a := range arns {
			if _, ok := arnRegion(a); !ok {
				errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("%s[%d]", field, i), "%q is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)", a))
			}
		}
	}
	checkARNs("topic_arns", c.TopicARNs)
	for _, a := range slices.Sorted(maps.Keys(c.AccountTopics)) {
		field := "account_topics." + a
		switch {
		case !accountRE.MatchString(a):
			errs = append(errs, pipeline.FieldErrorf(field, "account %q: %s", a, accountRule))
		case len(c.AccountTopics[a]) == 0:
			errs = append(errs, pipeline.FieldErrorf(field, "list the account's topic ARNs"))
		}
		checkARNs(field, c.AccountTopics[a])
	}
	switch {
	case c.AllowAnyTopic && (len(c.TopicARNs) > 0 || len(c.AccountTopics) > 0):
		errs = append(errs, pipeline.FieldErrorf("allow_any_topic", "contradicts topic_arns and account_topics: remove one"))
	case !c.AllowAnyTopic && len(c.TopicARNs) == 0 && len(c.AccountTopics) == 0:
		errs = append(errs, pipeline.FieldErrorf("topic_arns", "is required: list the SNS topics to accept (or account_topics per account); "+
			"allow_any_topic: true accepts any AWS account's topic and confirms its subscriptions"))
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = pipeline.Duration(defaultFetchTimeout)
	}
	errs = append(errs, c.fill(sesReplay))
	return errors.Join(errs...)
}

// Warnings points `sluice validate` at allow_any_topic.
func (c *SESConfig) Warnings() []error {
	if !c.AllowAnyTopic {
		return nil
	}
	return []error{pipeline.FieldErrorf("allow_any_topic", "any AWS account's SNS topic is accepted and its subscription confirmed: anyone can subscribe this endpoint to their topic and publish events into the stream; list topic_arns instead")}
}

// topicAllowed reports whether an SNS topic may post on a route: the
// route's account's topics when account_topics is set, else topic_arns,
// else (allow_any_topic) any.
func (c *SESConfig) topicAllowed(routeAccount, topic string) bool {
	if routeAccount != "" && len(c.AccountTopics) > 0 {
		return slices.Contains(c.AccountTopics[routeAccount], topic)
	}
	return c.AllowAnyTopic || slices.Contains(c.TopicARNs, topic)
}

// parseECDSAPublicKey accepts SendGrid's base64 DER (PKIX) key or PEM.
func parseECDSAPublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, errors.New("not a valid PEM block")
		}
		der = b.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, errors.New("not base64 DER or PEM")
		}
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX public key: %v", err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("not an ECDSA public key")
	}
	return k, nil
}

// arnRegion returns the region of an SNS topic ARN.
func arnRegion(arn string) (string, bool) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || !regionRE.MatchString(parts[3]) || parts[4] == "" || parts[5] == "" {
		return "", false
	}
	return parts[3], true
}
