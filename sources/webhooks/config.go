package webhooks

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"regexp"
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
	// it (base64 DER), or a PEM "PUBLIC KEY" block.
	PublicKey string `yaml:"public_key" required:"true"`
	// MaxAge, when set, rejects requests whose signed timestamp is older
	// (or further in the future) than this. 0 disables the check.
	MaxAge pipeline.Duration `yaml:"max_age"`

	key *ecdsa.PublicKey
}

// MailgunConfig enables the Mailgun webhook route.
type MailgunConfig struct {
	// SigningKey is the HTTP webhook signing key of the Mailgun account.
	SigningKey string `yaml:"signing_key" required:"true"`
	// MaxAge rejects signatures whose timestamp is further than this from
	// now, in either direction (default 5m; 0 means the default).
	MaxAge pipeline.Duration `yaml:"max_age"`
	// ReplayCapacity bounds the remembered tokens. Tokens are remembered
	// until their timestamp is older than max_age (after that the
	// timestamp check rejects them); a full set answers 503.
	ReplayCapacity int `yaml:"replay_capacity"`
	// RetryWindow is how long a request we answered 5xx stays acceptable
	// when Mailgun retries it unchanged with its original, by then stale,
	// signature (default 9h, covering Mailgun's ~8h retry schedule).
	RetryWindow pipeline.Duration `yaml:"retry_window"`
	// ReplayStore, when set, keeps the tokens in a store all replicas
	// share instead of in this process's memory (replay_capacity then does
	// not apply).
	ReplayStore *ReplayStoreConfig `yaml:"replay_store"`
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
	// TopicARNs, when set, are the only topics accepted.
	TopicARNs []string `yaml:"topic_arns"`
	// ConfirmSubscriptions GETs SubscribeURL of a verified
	// SubscriptionConfirmation (default true).
	ConfirmSubscriptions *bool `yaml:"confirm_subscriptions"`
	// FetchTimeout bounds fetching a signing certificate or confirming
	// a subscription (default 5s).
	FetchTimeout pipeline.Duration `yaml:"fetch_timeout"`
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
	defaultMailgunMaxAge  = 5 * time.Minute
	defaultReplayCapacity = 200000
	defaultRetryWindow    = 9 * time.Hour
	defaultFetchTimeout   = 5 * time.Second
	defaultRedisPrefix    = "sluice:mailgun:"
	defaultRedisTimeout   = time.Second
)

var (
	accountRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
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
		errs = append(errs, pipeline.FieldErrorf("account_id", "must be 1-128 of A-Z a-z 0-9 _ . : -"))
	}
	for i, a := range c.Accounts {
		if !accountRE.MatchString(a) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("accounts[%d]", i), "must be 1-128 of A-Z a-z 0-9 _ . : -"))
		}
	}
	if c.SendGrid == nil && c.Mailgun == nil && c.SES == nil {
		errs = append(errs, pipeline.FieldErrorf("sendgrid", "enable at least one provider: sendgrid, mailgun or ses"))
	}
	return errors.Join(errs...)
}

// Validate parses the public key.
func (c *SendGridConfig) Validate() error {
	if c.PublicKey == "" {
		return nil // reported as missing
	}
	k, err := parseECDSAPublicKey(c.PublicKey)
	if err != nil {
		return pipeline.FieldErrorf("public_key", "%v", err)
	}
	c.key = k
	return nil
}

// Validate checks the replay settings.
func (c *MailgunConfig) Validate() error {
	if c.MaxAge <= 0 {
		c.MaxAge = pipeline.Duration(defaultMailgunMaxAge)
	}
	if c.ReplayCapacity < 0 {
		return pipeline.FieldErrorf("replay_capacity", "must be at least 1")
	}
	if c.ReplayCapacity == 0 {
		c.ReplayCapacity = defaultReplayCapacity
	}
	if c.RetryWindow <= 0 {
		c.RetryWindow = pipeline.Duration(defaultRetryWindow)
	}
	if c.ReplayStore != nil {
		return underField("replay_store.", c.ReplayStore.Validate())
	}
	return nil
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
	if c.Prefix == "" {
		c.Prefix = defaultRedisPrefix
	}
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

// Validate checks regions and topic ARNs.
func (c *SESConfig) Validate() error {
	var errs []error
	for i, r := range c.Regions {
		if !regionRE.MatchString(r) {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("regions[%d]", i), "%q is not an AWS region name like us-east-1", r))
		}
	}
	for i, a := range c.TopicARNs {
		if _, ok := arnRegion(a); !ok {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("topic_arns[%d]", i), "%q is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)", a))
		}
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = pipeline.Duration(defaultFetchTimeout)
	}
	return errors.Join(errs...)
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
