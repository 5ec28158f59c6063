// Package redisconn holds what the components that keep state in Redis
// share (the dedupe transform's store: redis, the webhooks source's Mailgun
// replay store): the connection settings of a `redis:` block and how they
// become go-redis client options. Nothing here dials: go-redis connects on
// the first command, so validating a config never needs a server.
package redisconn

import (
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/pipeline"
)

// Config is the connection part of a component's `redis:` block; embed it
// with `yaml:",inline"` so the keys sit in that block.
type Config struct {
	// Addr is the server's host:port.
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	// Timeout bounds one round trip (the component's operation, and each
	// socket read and write).
	Timeout pipeline.Duration `yaml:"timeout"`
}

// Check reports what is wrong with c as FieldErrors whose keys start with
// prefix ("redis." for a component whose block is `redis:`, "" for the
// block's own Validate). It is not named Validate so that a config
// embedding Config does not get a promoted Validate the decoder would call
// where the component does not use Redis.
func (c *Config) Check(prefix string) []error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, pipeline.FieldErrorf(prefix+"addr", "is required (host:port)"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, pipeline.FieldErrorf(prefix+"addr", "must be host:port; got %q", pipeline.RedactURL(c.Addr)))
	}
	if c.DB < 0 {
		errs = append(errs, pipeline.FieldErrorf(prefix+"db", "must be 0 or more; got %d", c.DB))
	}
	if c.Timeout <= 0 {
		errs = append(errs, pipeline.FieldErrorf(prefix+"timeout", "must be positive"))
	}
	return errs
}

// Options turns c (and tlsCfg, nil or disabled: plain TCP) into go-redis
// client options: timeout bounds each socket read and write. Callers adjust
// the rest (retries, dial timeout) to what their commands tolerate.
func Options(c Config, tlsCfg *pipeline.TLSConfig) (*redis.Options, error) {
	t, err := tlsCfg.Build()
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", pipeline.RedactURL(c.Addr), err)
	}
	return &redis.Options{
		Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
		TLSConfig:   t,
		ReadTimeout: c.Timeout.D(), WriteTimeout: c.Timeout.D(),
	}, nil
}
