package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	filesink "github.com/sluicehq/sluice/sinks/file"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// The run ends on the group's committed offsets, read from the broker,
// never on how many events the consumer read: after a rebalance the
// redelivered events reach any count before every event is in (the old
// check stopped runs early and the audit reported loss).
func TestDrainCheckWaitsForCommittedOffsets(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(4, "drain"))
	ctx := context.Background()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "drain", Balancer: &kafkago.RoundRobin{}, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll} // acks: the records are in before the drain check reads the ends
	var msgs []kafkago.Message
	for range 40 {
		msgs = append(msgs, kafkago.Message{Value: []byte(`{"id":"x"}`)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	vars := map[string]string{"SLUICE_KAFKA_BROKERS": strings.Join(brokers, ","), "BENCH_TOPIC": "drain", "BENCH_GROUP": "drain-g", "BENCH_OUT": t.TempDir()}
	cfg, err := pipeline.Load("file-consumer.yaml", []byte(fileConsumer), registry(nil)(), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	check := newDrainCheck(Options{Brokers: vars["SLUICE_KAFKA_BROKERS"]}, cfg, nil, 40)
	if check.By != "kafka committed offsets" {
		t.Fatalf("drain judged by %q, want kafka committed offsets", check.By)
	}
	admin := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	commit := func(offset int64) {
		t.Helper()
		var oc []kafkago.OffsetCommit
		for p := range 4 {
			oc = append(oc, kafkago.OffsetCommit{Partition: p, Offset: offset})
		}
		if _, err := admin.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: "drain-g", GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{"drain": oc}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		commit int64 // per partition; -1 none
		done   bool
	}{
		{"nothing committed", -1, false},
		{"committed short of the end", 9, false},
		{"committed to the end", 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.commit >= 0 {
				commit(tc.commit)
			}
			done, where, err := check.check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if done != tc.done {
				t.Fatalf("drained = %v (%s), want %v", done, where, tc.done)
			}
		})
	}
}

// On Kinesis the run ends when every shard's checkpoint is at the shard's
// end: nothing after it to read.
func TestKinesisDrainCheckWaitsForCheckpointsAtTheEnd(t *testing.T) {
	endpoint, mongoURI := testenv.KinesisEndpoint(t), testenv.MongoURI(t)
	ctx := context.Background()
	stream := "drain-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := createStream(ctx, endpoint, stream, 2); err != nil {
		t.Fatal(err)
	}
	client, err := awskinesis.Client(ctx, "us-east-1", endpoint, staticCredentials())
	if err != nil {
		t.Fatal(err)
	}
	var entries []kinesistypes.PutRecordsRequestEntry
	for i := range 20 {
		entries = append(entries, kinesistypes.PutRecordsRequestEntry{Data: []byte(`{"id":"x"}`), PartitionKey: aws.String(strconv.Itoa(i))})
	}
	put, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	last, prev := map[string]string{}, map[string]string{} // shard → last and second-to-last sequence number
	for _, r := range put.Records {
		id := aws.ToString(r.ShardId)
		prev[id], last[id] = last[id], aws.ToString(r.SequenceNumber)
	}
	db := "bench_drain_" + stream[6:]
	reg := pipeline.NewRegistry()
	kinesissource.Register(reg)
	filesink.Register(reg)
	doc := fmt.Sprintf(`name: drain
source:
  kinesis: {stream: %s, endpoint: %s, consumer_group: g, credentials: {access_key_id: test, secret_access_key: test},
            checkpoint: {mongodb: {uri: %q, database: %s}}}
sinks: [{file: {path: %s}}]
`, stream, endpoint, mongoURI, db, filepath.Join(t.TempDir(), "out.jsonl"))
	cfg, err := pipeline.Load("drain.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	check := newDrainCheck(Options{KinesisEndpoint: endpoint}, cfg, nil, 20)
	if check.By != "kinesis checkpoints" {
		t.Fatalf("drain judged by %q, want kinesis checkpoints", check.By)
	}
	leases, err := kinesissource.OpenMongoLeases(kinesissource.MongoCheckpoint{URI: mongoURI, Database: db}, "g", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Close(ctx)
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		checkpoint map[string]string // nil: no leases yet
		done       bool
	}{
		{"no leases yet", nil, false},
		{"leases without checkpoints", map[string]string{}, false},
		{"one record short on a shard", prev, false},
		{"every shard checkpointed at its last record", last, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.checkpoint != nil {
				for _, sh := range shards.Shards {
					id := aws.ToString(sh.ShardId)
					if err := leases.Ensure(ctx, []kinesissource.Lease{{Shard: id}}); err != nil {
						t.Fatal(err)
					}
					if _, err := leases.Acquire(ctx, id, "bench-test", "", time.Now().Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
					if cp, ok := tc.checkpoint[id]; ok {
						if _, err := leases.Checkpoint(ctx, id, "bench-test", cp); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			done, where, err := check.check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if done != tc.done {
				t.Fatalf("drained = %v (%s), want %v", done, where, tc.done)
			}
		})
	}
}
