package bench

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/generate"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// BenchmarkKinesisConsume reads b.N generated events from a 4-shard
// kinesalite stream (make testenv) through the kinesis source into a
// discarding sink. kinesalite serves GetRecords far slower than Kinesis,
// so events/s here measures it; cpu-s/Mevents is this process's cost.
func BenchmarkKinesisConsume(b *testing.B) {
	endpoint, mongoURI := testenv.KinesisEndpoint(b), testenv.MongoURI(b)
	stream := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx := context.Background()
	client := testenv.KinesisStream(b, stream, 4)
	gen := generate.NewGenerator(generate.Workload{Seed: 3}, time.Now)
	var ev pipeline.Event
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < b.N; i++ {
		gen.Next(&ev, nil)
		entries = append(entries, types.PutRecordsRequestEntry{Data: ev.Payload, PartitionKey: aws.String(string(ev.Key))})
		if len(entries) == 500 || i == b.N-1 {
			if _, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries}); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
	sink := &discard{}
	reg := pipeline.NewRegistry()
	kinesissource.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(`name: kinesis-bench
source:
  kinesis: {stream: %s, endpoint: %s, consumer_group: bench, credentials: {access_key_id: test, secret_access_key: test},
            checkpoint: {mongodb: {uri: %q, database: bench_%s}}, poll: {limit: 10000, idle_wait: 50ms}}
sinks: [{discard: {}}]
`, stream, endpoint, mongoURI, stream[6:])
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	p := pipelinetest.Build(b, "bench.yaml", doc, reg)
	driveToSink(b, runCtx, stop, p, sink)
}
