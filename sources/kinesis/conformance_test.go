package kinesis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// TestConformance runs the source table against kinesalite: a fresh
// one-shard stream and lease database per case, so the event ids
// ("shard/sequence") are known when the records are put. The lease's
// checkpoint in MongoDB is what a reopened source resumes from. poll.limit
// is 4, so one feed spans several batches.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		e := setup(t, 1)
		fed := 0
		return &conformance.SourceUnderTest{
			Checkpoints: true,
			Feed: func(t *testing.T, n int) []string {
				var entries []types.PutRecordsRequestEntry
				for range n {
					ev := conformance.Event("r"+strconv.Itoa(fed), "k", fed)
					fed++
					entries = append(entries, types.PutRecordsRequestEntry{Data: ev.Body, PartitionKey: aws.String(string(ev.Key))})
				}
				out, err := e.client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
				if err != nil {
					t.Fatalf("put records: %v", err)
				}
				var ids []string
				for _, r := range out.Records {
					if r.ErrorCode != nil {
						t.Fatalf("put records: %s", aws.ToString(r.ErrorMessage))
					}
					ids = append(ids, aws.ToString(r.ShardId)+"/"+aws.ToString(r.SequenceNumber))
				}
				return ids
			},
			Open: func(t *testing.T) pipeline.Source { return openConformanceSource(t, e) },
		}
	})
}

// openConformanceSource is the one place the conformance test builds a
// source.
func openConformanceSource(t *testing.T, e *env) pipeline.Source {
	var c kinesissource.Config
	c.SetDefaults()
	c.Stream, c.Endpoint, c.ConsumerGroup, c.Credentials = e.stream, e.endpoint, "g", creds
	c.Checkpoint.MongoDB = &kinesissource.MongoCheckpoint{URI: e.mongo, Database: e.db}
	// A long lease: a busy machine must not lose it between renewals.
	c.Lease = kinesissource.LeaseConfig{Duration: pipeline.Duration(2 * time.Minute), RenewEvery: pipeline.Duration(200 * time.Millisecond)}
	c.Poll = kinesissource.PollConfig{Limit: 4, IdleWait: pipeline.Duration(50 * time.Millisecond)}
	c.ShardSync = pipeline.Duration(500 * time.Millisecond)
	c.CheckpointInterval = pipeline.Duration(100 * time.Millisecond)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := kinesissource.New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
