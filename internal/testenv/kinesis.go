package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/internal/testwait"
)

// KinesisCredentials returns the static keys the test stack's Kinesis
// (kinesalite) accepts.
func KinesisCredentials() *awskinesis.Credentials {
	return &awskinesis.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
}

// KinesisStream creates the stream name (unique to the test) with shards
// shards on the test stack's Kinesis, waits until it is ACTIVE and
// deletes it when t ends. It returns a client of that server (us-east-1,
// KinesisCredentials).
func KinesisStream(t testing.TB, name string, shards int32) *kinesis.Client {
	t.Helper()
	c, err := awskinesis.Client(context.Background(), "us-east-1", KinesisEndpoint(t), KinesisCredentials())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	WaitKinesisActive(t, c, name)
	return c
}

// WaitKinesisActive waits until stream is ACTIVE (after its creation or a
// shard split), bounded only against a hang.
func WaitKinesisActive(t testing.TB, c *kinesis.Client, stream string) {
	t.Helper()
	var status string
	testwait.ForEvery(t, 50*time.Millisecond, "stream "+stream+" active", func() bool {
		out, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			status = err.Error()
			return false
		}
		status = string(out.StreamDescriptionSummary.StreamStatus)
		return out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	}, func() string { return "status " + status })
}
