// Package kafkaconn holds what the Kafka source and sink share: the
// connection settings (brokers, TLS, SASL) and how they become kafka-go
// dialers and transports.
package kafkaconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/sluicehq/sluice/pipeline"
)

// SASL is the `sasl:` block.
type SASL struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512.
	Mechanism string `yaml:"mechanism" required:"true" enum:"plain,scram-sha-256,scram-sha-512"`
	Username  string `yaml:"username" required:"true"`
	Password  string `yaml:"password" required:"true"`
}

// Validate checks the mechanism.
func (s *SASL) Validate() error {
	switch s.Mechanism {
	case "plain", "scram-sha-256", "scram-sha-512":
		return nil
	}
	return pipeline.FieldErrorf("mechanism", "must be plain, scram-sha-256 or scram-sha-512; got %q", s.Mechanism)
}

func (s *SASL) mechanism() (sasl.Mechanism, error) {
	if s == nil {
		return nil, nil
	}
	switch s.Mechanism {
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, s.Username, s.Password)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, s.Username, s.Password)
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q", s.Mechanism)
}

// Conn is how a Kafka component reaches the cluster.
type Conn struct {
	Brokers []string
	TLS     *tls.Config
	SASL    sasl.Mechanism
	// PlainWithoutTLS is set when SASL PLAIN would send the password in
	// the clear: the component logs a warning at start.
	PlainWithoutTLS bool
}

// PlainWithoutTLSWarning is the warning a component logs for
// Conn.PlainWithoutTLS.
const PlainWithoutTLSWarning = "kafka: SASL PLAIN without TLS sends the password in plaintext; set tls (enabled: true) or use scram-sha-512"

// New checks brokers and builds TLS and SASL.
func New(brokers []string, tlsCfg *pipeline.TLSConfig, s *SASL) (*Conn, error) {
	c := &Conn{}
	for _, b := range brokers {
		for _, part := range strings.Split(b, ",") {
			if part = strings.TrimSpace(part); part != "" {
				c.Brokers = append(c.Brokers, part)
			}
		}
	}
	if len(c.Brokers) == 0 {
		return nil, errors.New("no brokers")
	}
	var err error
	if c.TLS, err = tlsCfg.Build(); err != nil {
		return nil, err
	}
	if c.SASL, err = s.mechanism(); err != nil {
		return nil, err
	}
	c.PlainWithoutTLS = s != nil && s.Mechanism == "plain" && c.TLS == nil
	return c, nil
}

// ValidateBrokers checks host:port syntax; for Validate methods.
func ValidateBrokers(brokers []string) error {
	n := 0
	for _, b := range brokers {
		for _, part := range strings.Split(b, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			n++
			if _, _, err := net.SplitHostPort(part); err != nil {
				return pipeline.FieldErrorf("brokers", "%q is not host:port", pipeline.RedactURL(part))
			}
		}
	}
	if n == 0 {
		return pipeline.FieldErrorf("brokers", "needs at least one broker (host:port)")
	}
	return nil
}

// Dialer is for readers and consumer groups.
func (c *Conn) Dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, TLS: c.TLS, SASLMechanism: c.SASL}
}

// Transport is for writers and admin clients.
func (c *Conn) Transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 10 * time.Second, TLS: c.TLS, SASL: c.SASL, IdleTimeout: time.Minute}
}
