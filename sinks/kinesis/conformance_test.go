package kinesis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
)

// TestConformance runs the sink table against the shared Kinesis stand-in
// (kinesalite), a fresh two-shard stream per case. A record carries the
// body only, so read-back takes the id from the body's "id".
func TestConformance(t *testing.T) {
	endpoint, creds := testenv.KinesisEndpoint(t), testenv.KinesisCredentials()
	open := func(t *testing.T, endpoint, stream string) *kinesissink.Sink {
		c := kinesissink.Config{Stream: stream, Region: "us-east-1", Endpoint: endpoint, Credentials: creds}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		s, err := kinesissink.New(pipelinetest.BuildContext(), c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	conformance.TestSink(t, func(t *testing.T) *conformance.SinkUnderTest {
		stream := "conf-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		client := testenv.KinesisStream(t, stream, 2)
		return &conformance.SinkUnderTest{
			Sink: open(t, endpoint, stream),
			Kind: conformance.Log,
			ReadBack: func(ctx context.Context) ([]conformance.Record, error) {
				return readStream(ctx, client, stream)
			},
			// Over the 1 MiB Kinesis record limit.
			Poison: func(id, key string) *pipeline.Event {
				return ev(id, key, `{"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
			},
			Unreachable: func(t *testing.T) pipeline.Sink { return open(t, "http://127.0.0.1:1", stream) },
		}
	})
}

// readStream reads every shard from its start until a read comes back
// empty and caught up.
func readStream(ctx context.Context, c *kinesis.Client, stream string) ([]conformance.Record, error) {
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, err
	}
	var recs []conformance.Record
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return nil, err
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, err
			}
			for _, r := range out.Records {
				recs = append(recs, conformance.Record{ID: gjson.GetBytes(r.Data, "id").String(), Body: r.Data})
			}
			if len(out.Records) == 0 || aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs, nil
}
