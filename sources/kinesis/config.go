package kinesis

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `kinesis` source's YAML.
type Config struct {
	Stream   string `yaml:"stream" required:"true"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// Start is where a shard without a checkpoint begins: trim_horizon,
	// latest or at_timestamp (with timestamp). Child shards of a split or
	// merge always start at their beginning.
	Start     string `yaml:"start" enum:"trim_horizon,latest,at_timestamp"`
	Timestamp string `yaml:"timestamp"`
	// ConsumerGroup namespaces leases and checkpoints: consumers of one
	// group share the stream's shards.
	ConsumerGroup string           `yaml:"consumer_group" required:"true"`
	Checkpoint    CheckpointConfig `yaml:"checkpoint" required:"true"`
	Lease         LeaseConfig      `yaml:"lease"`
	Poll          PollConfig       `yaml:"poll"`
	// ShardSync is how often the shard list is refreshed (new shards
	// after a reshard).
	ShardSync pipeline.Duration `yaml:"shard_sync"`
	// CheckpointInterval is how often acked positions are checkpointed.
	CheckpointInterval pipeline.Duration `yaml:"checkpoint_interval"`
	// LagInterval is how often each shard's behind-latest gauge is read
	// from the stream, independent of fetching (so it grows while a store
	// is down and reading is held back).
	LagInterval         pipeline.Duration       `yaml:"lag_interval"`
	MaxInFlightPerShard int                     `yaml:"max_in_flight_per_shard"`
	Credentials         *awskinesis.Credentials `yaml:"credentials"`
}

// CheckpointConfig says where leases and checkpoints live.
type CheckpointConfig struct {
	MongoDB *MongoCheckpoint `yaml:"mongodb" required:"true"`
}

// MongoCheckpoint is the MongoDB lease store.
type MongoCheckpoint struct {
	URI        string `yaml:"uri" required:"true"`
	Database   string `yaml:"database" required:"true"`
	Collection string `yaml:"collection"`
}

// LeaseConfig tunes shard ownership.
type LeaseConfig struct {
	// Duration is how long a lease lasts without renewal: a consumer that
	// dies loses its shards this long after its last renewal.
	Duration   pipeline.Duration `yaml:"duration"`
	RenewEvery pipeline.Duration `yaml:"renew_every"`
	// Steal lets a consumer with fewer shards than its share take one
	// from the busiest consumer, so shards balance when consumers join.
	Steal bool `yaml:"steal"`
}

// PollConfig tunes GetRecords.
type PollConfig struct {
	Limit    int               `yaml:"limit"`
	IdleWait pipeline.Duration `yaml:"idle_wait"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() {
	c.Region = "us-east-1"
	c.Start = "trim_horizon"
	c.Lease = LeaseConfig{Duration: pipeline.Duration(10 * time.Second), RenewEvery: pipeline.Duration(3 * time.Second), Steal: true}
	c.Poll = PollConfig{Limit: 1000, IdleWait: pipeline.Duration(time.Second)}
	c.ShardSync = pipeline.Duration(30 * time.Second)
	c.CheckpointInterval = pipeline.Duration(time.Second)
	c.LagInterval = pipeline.Duration(5 * time.Second)
	c.MaxInFlightPerShard = 5000
}

// Validate checks the values decoding cannot.
func (c *Config) Validate() error {
	var errs []error
	switch c.Start {
	case "trim_horizon", "latest":
	case "at_timestamp":
		if _, err := time.Parse(time.RFC3339, c.Timestamp); err != nil {
			errs = append(errs, pipeline.FieldErrorf("timestamp", "start: at_timestamp needs an RFC 3339 timestamp; got %q", c.Timestamp))
		}
	default:
		errs = append(errs, pipeline.FieldErrorf("start", "must be trim_horizon, latest or at_timestamp; got %q", c.Start))
	}
	if c.Lease.RenewEvery <= 0 || c.Lease.RenewEvery.D()*2 > c.Lease.Duration.D() {
		errs = append(errs, pipeline.FieldErrorf("lease.renew_every", "must be positive and at most half of lease.duration (%s)", c.Lease.Duration))
	}
	if c.Poll.Limit < 1 || c.Poll.Limit > 10000 {
		errs = append(errs, pipeline.FieldErrorf("poll.limit", "must be from 1 to 10000 (the GetRecords limit)"))
	}
	if c.Poll.IdleWait <= 0 {
		errs = append(errs, pipeline.FieldErrorf("poll.idle_wait", "must be more than 0 (Kinesis allows 5 GetRecords calls per shard per second)"))
	}
	if c.MaxInFlightPerShard < 1 {
		errs = append(errs, pipeline.FieldErrorf("max_in_flight_per_shard", "must be at least 1"))
	}
	if c.LagInterval <= 0 {
		errs = append(errs, pipeline.FieldErrorf("lag_interval", "must be more than 0"))
	}
	if c.CheckpointInterval <= 0 || c.ShardSync <= 0 {
		errs = append(errs, pipeline.FieldErrorf("checkpoint_interval", "checkpoint_interval and shard_sync must be more than 0"))
	}
	return errors.Join(errs...)
}
