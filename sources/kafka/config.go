package kafka

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice/internal/kafkaconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `kafka` source's YAML.
type Config struct {
	Brokers []string `yaml:"brokers" required:"true"`
	// Topic, or Topics for several, all read by one group.
	Topic  string   `yaml:"topic"`
	Topics []string `yaml:"topics"`
	Group  string   `yaml:"group" required:"true"`
	// Start is where a partition without a committed offset begins:
	// earliest (default) or latest.
	Start string `yaml:"start" enum:"earliest,latest"`
	// MaxInFlightPerPartition bounds the records of one partition handed to
	// the pipeline and not yet acked.
	MaxInFlightPerPartition int `yaml:"max_in_flight_per_partition"`
	// BatchSize is the most records one Read returns (from one partition).
	BatchSize int         `yaml:"batch_size"`
	Fetch     FetchConfig `yaml:"fetch"`
	// CommitInterval is how often acked offsets are committed; they are
	// also committed on shutdown and when partitions are revoked.
	CommitInterval pipeline.Duration `yaml:"commit_interval"`
	// RebalanceDrain is how long a revoked partition waits for its
	// in-flight records to be acked, so their offsets can be committed
	// before another member takes over (fewer duplicates).
	RebalanceDrain pipeline.Duration `yaml:"rebalance_drain"`
	// LagInterval is how often the end offsets of the assigned partitions
	// are read from the brokers for sluice_kafka_consumer_lag, apart from
	// fetching: the gauge keeps moving while reading is held back.
	LagInterval       pipeline.Duration   `yaml:"lag_interval"`
	SessionTimeout    pipeline.Duration   `yaml:"session_timeout"`
	HeartbeatInterval pipeline.Duration   `yaml:"heartbeat_interval"`
	RebalanceTimeout  pipeline.Duration   `yaml:"rebalance_timeout"`
	TLS               *pipeline.TLSConfig `yaml:"tls"`
	SASL              *kafkaconn.SASL     `yaml:"sasl"`
}

// FetchConfig tunes fetch requests.
type FetchConfig struct {
	MinBytes pipeline.ByteSize `yaml:"min_bytes"`
	MaxBytes pipeline.ByteSize `yaml:"max_bytes"`
	// MaxWait is how long the broker holds a fetch when no data is there;
	// the fetch's read deadline is MaxWait plus 10s.
	MaxWait pipeline.Duration `yaml:"max_wait"`
}

// maxFetchBytes bounds fetch.max_bytes (and so fetch.min_bytes).
const maxFetchBytes = 1 << 30

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Start = "earliest"
	c.MaxInFlightPerPartition = 5000
	c.BatchSize = 500
	c.Fetch = FetchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: pipeline.Duration(time.Second)}
	c.CommitInterval = pipeline.Duration(time.Second)
	c.RebalanceDrain = pipeline.Duration(5 * time.Second)
	c.LagInterval = pipeline.Duration(5 * time.Second)
	c.SessionTimeout = pipeline.Duration(30 * time.Second)
	c.HeartbeatInterval = pipeline.Duration(3 * time.Second)
	c.RebalanceTimeout = pipeline.Duration(30 * time.Second)
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	if err := kafkaconn.ValidateBrokers(c.Brokers); err != nil {
		errs = append(errs, err)
	}
	if c.Topic == "" && len(c.Topics) == 0 {
		errs = append(errs, pipeline.FieldErrorf("topic", "set topic (or topics)"))
	}
	if c.Topic != "" && len(c.Topics) > 0 {
		errs = append(errs, pipeline.FieldErrorf("topics", "set topic or topics, not both"))
	}
	if c.Start != "earliest" && c.Start != "latest" {
		errs = append(errs, pipeline.FieldErrorf("start", "must be earliest or latest; got %q", c.Start))
	}
	if c.MaxInFlightPerPartition < 1 {
		errs = append(errs, pipeline.FieldErrorf("max_in_flight_per_partition", "must be at least 1"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, pipeline.FieldErrorf("batch_size", "must be at least 1"))
	}
	if c.Fetch.MaxWait.D() < time.Second {
		errs = append(errs, pipeline.FieldErrorf("fetch.max_wait", "must be at least 1s (shorter long polls only add fetch requests on idle partitions)"))
	}
	switch {
	case c.Fetch.MaxBytes > maxFetchBytes:
		// A fetch request carries it as a 32-bit size; kafka-go refuses
		// more at every fetch, which would only show as retried warnings.
		errs = append(errs, pipeline.FieldErrorf("fetch.max_bytes", "must be at most 1GiB; got %d bytes", c.Fetch.MaxBytes))
	case c.Fetch.MaxBytes < c.Fetch.MinBytes || c.Fetch.MaxBytes <= 0:
		errs = append(errs, pipeline.FieldErrorf("fetch.max_bytes", "must be positive and at least fetch.min_bytes"))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, pipeline.FieldErrorf("commit_interval", "must be more than 0"))
	}
	if c.LagInterval <= 0 {
		errs = append(errs, pipeline.FieldErrorf("lag_interval", "must be more than 0"))
	}
	if c.HeartbeatInterval.D() >= c.SessionTimeout.D() {
		errs = append(errs, pipeline.FieldErrorf("heartbeat_interval", "must be shorter than session_timeout"))
	}
	return errors.Join(errs...)
}

func (c *Config) topics() []string {
	if c.Topic != "" {
		return []string{c.Topic}
	}
	return c.Topics
}
