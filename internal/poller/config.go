package poller

import (
	"errors"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Config is what every polling source has in its YAML (inlined).
type Config struct {
	// Interval is the pause between polls once an object is caught up.
	Interval pipeline.Duration `yaml:"interval"`
	// Overlap re-reads this much before the cursor on every poll, for
	// records that become visible late; re-read records already handed out
	// are dropped by ID and stamp.
	Overlap pipeline.Duration `yaml:"overlap"`
	// CheckpointInterval is how often acked cursors are saved; they are
	// also saved at shutdown.
	CheckpointInterval pipeline.Duration `yaml:"checkpoint_interval"`
	// StartTime is where an object without a saved cursor begins (RFC
	// 3339); empty reads everything.
	StartTime string `yaml:"start_time"`
	// MaxBackoff caps the wait between retries of a failing request.
	MaxBackoff pipeline.Duration `yaml:"max_backoff"`
	// Checkpoint is where cursors are kept.
	Checkpoint CheckpointConfig `yaml:"checkpoint" required:"true"`
	// AccountID is the tenant whose credentials this connector polls
	// with: the account_id of every event whose record names no account
	// of its own. It defaults to checkpoint.key (the pipeline's name).
	AccountID string `yaml:"account_id"`
}

// CheckpointConfig picks the cursor store: exactly one of file or mongodb.
type CheckpointConfig struct {
	// Key names this connector's cursors in the store; it defaults to the
	// pipeline's name. Two pipelines reading the same account need
	// different keys.
	Key     string           `yaml:"key"`
	File    *FileCheckpoint  `yaml:"file"`
	MongoDB *MongoCheckpoint `yaml:"mongodb"`
}

// FileCheckpoint is a JSON file, for local runs.
type FileCheckpoint struct {
	Path string `yaml:"path" required:"true"`
}

// MongoCheckpoint is a MongoDB collection.
type MongoCheckpoint struct {
	URI        string `yaml:"uri" required:"true"`
	Database   string `yaml:"database" required:"true"`
	Collection string `yaml:"collection"`
}

// SetDefaults fills the shared defaults; overlap is the vendor's to set.
func (c *Config) SetDefaults() {
	c.Interval = pipeline.Duration(time.Minute)
	c.CheckpointInterval = pipeline.Duration(5 * time.Second)
	c.MaxBackoff = pipeline.Duration(5 * time.Minute)
}

// Validate checks the shared fields.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, pipeline.FieldErrorf("interval", "must be more than 0"))
	}
	if c.Overlap < 0 {
		errs = append(errs, pipeline.FieldErrorf("overlap", "must not be negative"))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, pipeline.FieldErrorf("checkpoint_interval", "must be more than 0"))
	}
	if c.MaxBackoff <= 0 {
		errs = append(errs, pipeline.FieldErrorf("max_backoff", "must be more than 0"))
	}
	if _, err := c.Start(); err != nil {
		errs = append(errs, pipeline.FieldErrorf("start_time", "must be an RFC 3339 time such as 2024-01-31T00:00:00Z; got %q", c.StartTime))
	}
	switch {
	case c.Checkpoint.File == nil && c.Checkpoint.MongoDB == nil:
		errs = append(errs, pipeline.FieldErrorf("checkpoint", "set file or mongodb"))
	case c.Checkpoint.File != nil && c.Checkpoint.MongoDB != nil:
		errs = append(errs, pipeline.FieldErrorf("checkpoint", "set file or mongodb, not both"))
	}
	return errors.Join(errs...)
}

// Start parses StartTime (zero when empty).
func (c *Config) Start() (time.Time, error) {
	if c.StartTime == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, c.StartTime)
}

// OpenStore opens the configured cursor store.
func (c *Config) OpenStore() (Store, error) {
	if c.Checkpoint.MongoDB != nil {
		m := c.Checkpoint.MongoDB
		return OpenMongoStore(m.URI, m.Database, m.Collection)
	}
	return NewFileStore(c.Checkpoint.File.Path)
}

// Options turns the config into Source options; the vendor fills Vendor,
// Objects, Sorted and Client.
func (c *Config) Options(bc pipeline.BuildContext) (Options, error) {
	start, err := c.Start()
	if err != nil {
		return Options{}, err
	}
	store, err := c.OpenStore()
	if err != nil {
		return Options{}, err
	}
	key := c.Checkpoint.Key
	if key == "" {
		key = bc.Pipeline
	}
	account := c.AccountID
	if account == "" {
		account = key
	}
	return Options{
		Account:  account,
		Interval: c.Interval.D(), Overlap: c.Overlap.D(), CheckpointInterval: c.CheckpointInterval.D(),
		MaxBackoff: c.MaxBackoff.D(), Start: start, StateKey: key, Store: store, Logger: bc.Logger, Metrics: bc.Metrics,
	}, nil
}
