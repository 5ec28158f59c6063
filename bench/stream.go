package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/pipeline"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// drainCheck reports, once the producer has finished, whether the consumer
// has settled everything it wrote, and a line saying where it stands. It
// reads the stream's own positions, never a count of events read:
// redeliveries after a rebalance reach any count before every event is in.
type drainCheck struct {
	// By names the method, for the result: "kafka committed offsets",
	// "kinesis checkpoints", or "events read" where the stream has neither.
	By    string
	check func(ctx context.Context) (bool, string, error)
}

// newDrainCheck picks the check for the consumer's source: a Kafka group's
// committed offsets against the topic's end offsets, or Kinesis
// checkpoints against the shards' ends; for any other source the count of
// events the consumer read.
func newDrainCheck(o Options, cfg *pipeline.Config, p *pipeline.Pipeline, total int64) drainCheck {
	switch c := cfg.Source.Spec.Config.(type) {
	case *kinesissource.Config:
		return drainCheck{By: "kinesis checkpoints", check: func(ctx context.Context) (bool, string, error) {
			return kinesisDrained(ctx, o.KinesisEndpoint, c)
		}}
	}
	if cfg.Source.Spec.Name == "kafka" {
		brokers := configStrings(cfg.Source.Spec.Config, "brokers")
		if len(brokers) == 0 {
			brokers = []string{o.Brokers}
		}
		var addrs []string
		for _, b := range brokers {
			addrs = append(addrs, strings.Split(b, ",")...)
		}
		group, topic := configField(cfg.Source.Spec.Config, "group"), configField(cfg.Source.Spec.Config, "topic")
		if topic != "" && group != "" {
			client := kafkagroup.NewClient(addrs, nil)
			return drainCheck{By: "kafka committed offsets", check: func(ctx context.Context) (bool, string, error) {
				pr, err := kafkagroup.Read(ctx, client, group, topic)
				return err == nil && pr.Drained(), pr.String(), err
			}}
		}
	}
	return drainCheck{By: "events read", check: func(context.Context) (bool, string, error) {
		st := p.Stats()
		return st.Read >= total, fmt.Sprintf("read %d of %d", st.Read, total), nil
	}}
}

// openKinesisGroup opens what the bench reads of a Kinesis consumer
// group: a client of its stream (the source's endpoint, else endpoint;
// its credentials, else the test stack's) and the group's leases in the
// source's MongoDB checkpoint store, which the caller closes.
func openKinesisGroup(ctx context.Context, endpoint string, c *kinesissource.Config) (*kinesis.Client, *kinesissource.MongoLeases, error) {
	if c.Checkpoint.MongoDB == nil {
		return nil, nil, errors.New("the kinesis source has no checkpoint store to read")
	}
	if c.Endpoint != "" {
		endpoint = c.Endpoint
	}
	creds := staticCredentials()
	if c.Credentials != nil {
		creds = c.Credentials
	}
	client, err := awskinesis.Client(ctx, c.Region, endpoint, creds)
	if err != nil {
		return nil, nil, err
	}
	leases, err := kinesissource.OpenMongoLeases(*c.Checkpoint.MongoDB, c.ConsumerGroup, c.Stream)
	if err != nil {
		return nil, nil, err
	}
	return client, leases, nil
}

// kinesisDrained reads the consumer group's leases and reports whether
// every shard is checkpointed at its end: SHARD_END, or a sequence number
// after which GetRecords finds nothing and is not behind the tip. Kinesis
// has no end offset of an open shard to compare with, so this asks for the
// next record after the checkpoint.
func kinesisDrained(ctx context.Context, endpoint string, c *kinesissource.Config) (bool, string, error) {
	client, leases, err := openKinesisGroup(ctx, endpoint, c)
	if err != nil {
		return false, "", err
	}
	defer leases.Close(context.WithoutCancel(ctx)) //nolint:errcheck // a read-only look
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(c.Stream)})
	if err != nil {
		return false, "", fmt.Errorf("list shards of %s: %w", c.Stream, err)
	}
	list, err := leases.List(ctx)
	if err != nil {
		return false, "", err
	}
	checkpoint := map[string]string{}
	for _, l := range list {
		checkpoint[l.Shard] = l.Checkpoint
	}
	done, parts := true, []string{}
	for _, sh := range shards.Shards {
		id := aws.ToString(sh.ShardId)
		cp, leased := checkpoint[id]
		at := "end"
		switch {
		case !leased:
			at = "no lease"
		case cp == kinesissource.ShardEnd:
		default:
			more, err := recordsAfter(ctx, client, c.Stream, id, cp)
			if err != nil {
				return false, "", err
			}
			if more {
				at = "behind at " + cp
			}
		}
		if at != "end" {
			done = false
		}
		parts = append(parts, id+" "+at)
	}
	return done, "shards: " + strings.Join(parts, ", "), nil
}

// recordsAfter reports whether the shard holds a record after the
// checkpoint ("" = from its beginning).
func recordsAfter(ctx context.Context, client *kinesis.Client, stream, shard, checkpoint string) (bool, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon}
	if checkpoint != "" {
		in.ShardIteratorType, in.StartingSequenceNumber = kinesistypes.ShardIteratorTypeAfterSequenceNumber, aws.String(checkpoint)
	}
	it, err := client.GetShardIterator(ctx, in)
	if err != nil {
		return false, fmt.Errorf("shard iterator of %s: %w", shard, err)
	}
	out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
	if err != nil {
		return false, fmt.Errorf("records of %s after %q: %w", shard, checkpoint, err)
	}
	return len(out.Records) > 0 || aws.ToInt64(out.MillisBehindLatest) > 0, nil
}

func createTopic(ctx context.Context, brokers, topic string, partitions int) error {
	c := &kafkago.Client{Addr: kafkago.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("create bench topic: %w", err)
	}
	if err := resp.Errors[topic]; err != nil {
		return fmt.Errorf("create bench topic: %w", err)
	}
	return nil
}

// createStream makes the bench's Kinesis stream and waits until it is active.
func createStream(ctx context.Context, endpoint, stream string, shards int32) error {
	client, err := awskinesis.Client(ctx, "us-east-1", endpoint, staticCredentials())
	if err != nil {
		return err
	}
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
		return fmt.Errorf("create bench stream: %w", err)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == kinesistypes.StreamStatusActive {
			return nil
		}
	}
	return fmt.Errorf("bench stream %s did not become active", stream)
}

// staticCredentials are the keys from the environment (test keys for
// kinesalite when unset), as the bench pipelines use them.
func staticCredentials() *awskinesis.Credentials {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" {
		id, secret = "test", "test"
	}
	return &awskinesis.Credentials{AccessKeyID: id, SecretAccessKey: secret}
}
