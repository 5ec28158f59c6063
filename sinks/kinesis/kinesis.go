// Package kinesis is the Kinesis sink: PutRecords in batches within the
// API limits, with per-record failures handed back to the runner.
package kinesis

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/pipeline"
)

// The PutRecords limits.
const (
	maxRecords      = 500
	maxRequestBytes = 5 << 20
	maxRecordBytes  = 1 << 20 // data plus partition key
	maxKeyBytes     = 256
)

// Config is the `kinesis` sink's YAML.
type Config struct {
	Stream   string `yaml:"stream" required:"true"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// PartitionKey is a body field path or a template; default the event
	// key, then its id.
	PartitionKey string                  `yaml:"partition_key"`
	Credentials  *awskinesis.Credentials `yaml:"credentials"`
}

// SetDefaults fills the documented defaults.
func (c *Config) SetDefaults() { c.Region = "us-east-1" }

// Validate checks the partition key template.
func (c *Config) Validate() error {
	if c.PartitionKey != "" {
		if _, err := pipeline.ParseFieldTemplate(c.PartitionKey); err != nil {
			return pipeline.FieldErrorf("partition_key", "%v", err)
		}
	}
	return nil
}

// Register adds the kinesis sink to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "kinesis", "records to a Kinesis stream (PutRecords, per-record retries)", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(bc, *c)
	})
}

// Sink puts events as records.
type Sink struct {
	cfg    Config
	client *kinesis.Client
	key    *pipeline.Template
}

// New builds the sink.
func New(_ pipeline.BuildContext, c Config) (*Sink, error) {
	client, err := awskinesis.Client(context.Background(), c.Region, c.Endpoint, c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("kinesis sink: %w", err)
	}
	s := &Sink{cfg: c, client: client}
	if c.PartitionKey != "" {
		if s.key, err = pipeline.ParseFieldTemplate(c.PartitionKey); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Write puts the batch in as few PutRecords calls as the limits allow.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	be := pipeline.NewBatchError()
	var entries []types.PutRecordsRequestEntry
	var index []int
	bytes := 0
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		err := s.put(ctx, entries, index, be)
		entries, index, bytes = entries[:0], index[:0], 0
		return err
	}
	for i, ev := range batch {
		e, err := s.entry(ev)
		if err != nil {
			be.Fail(i, pipeline.Permanent(err))
			continue
		}
		size := len(e.Data) + len(*e.PartitionKey)
		if len(entries) == maxRecords || bytes+size > maxRequestBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		entries = append(entries, e)
		index = append(index, i)
		bytes += size
	}
	if err := flush(); err != nil {
		return err
	}
	return be.Err()
}

func (s *Sink) entry(ev *pipeline.Event) (types.PutRecordsRequestEntry, error) {
	data := ev.Body
	if data == nil {
		data = ev.Payload
	}
	var key string
	switch {
	case s.key != nil:
		k, err := s.key.RenderString(ev)
		if err != nil {
			return types.PutRecordsRequestEntry{}, fmt.Errorf("partition key: %w", err)
		}
		key = k
	case len(ev.Key) > 0:
		key = string(ev.Key)
	default:
		key = ev.ID
	}
	if key == "" || len(key) > maxKeyBytes {
		return types.PutRecordsRequestEntry{}, fmt.Errorf("event %s: partition key must be 1 to 256 bytes, is %d", ev.ID, len(key))
	}
	if len(data)+len(key) > maxRecordBytes {
		return types.PutRecordsRequestEntry{}, fmt.Errorf("event %s is %d bytes, over the 1 MiB Kinesis record limit", ev.ID, len(data)+len(key))
	}
	return types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(key)}, nil
}

// put sends one request; a whole-request failure fails the call (the
// runner retries the batch), a partial failure fails just those records.
func (s *Sink) put(ctx context.Context, entries []types.PutRecordsRequestEntry, index []int, be *pipeline.BatchError) error {
	out, err := s.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s.cfg.Stream), Records: entries})
	if err != nil {
		// Every whole-request failure is retried: throttling and outages
		// pass, and a missing stream is more likely not created yet than
		// a poison event.
		return fmt.Errorf("put %d records to %s: %w", len(entries), s.cfg.Stream, err)
	}
	if aws.ToInt32(out.FailedRecordCount) == 0 {
		return nil
	}
	for j, r := range out.Records {
		if r.ErrorCode != nil {
			be.Fail(index[j], fmt.Errorf("put record to %s: %s: %s", s.cfg.Stream, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)))
		}
	}
	return nil
}

// Close does nothing: the client holds no connections that need closing.
func (s *Sink) Close(context.Context) error { return nil }
