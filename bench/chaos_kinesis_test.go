package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
	"github.com/sluicehq/sluice/transforms/enrich"
)

// chaosKinesisConsumer is the Kinesis chaos test's consumer: the stream
// with short leases (so takeovers come within seconds) → decode → enrich
// (ingested_at, which the order check reads) → MongoDB in mode insert
// (each id's first write kept), malformed events to a dead-letter file
// per process.
const chaosKinesisConsumer = `name: chaos-kinesis-test-consumer
source:
  kinesis:
    stream: "${BENCH_TOPIC}"
    endpoint: "${SLUICE_KINESIS_ENDPOINT}"
    consumer_group: "${BENCH_GROUP}"
    credentials: {access_key_id: test, secret_access_key: test}
    checkpoint: {mongodb: {uri: "%[1]s", database: bench_chaos, collection: kinesis_leases}}
    lease: {duration: 4s, renew_every: 1s}
    shard_sync: 2s
    poll: {limit: 1000, idle_wait: 200ms}
transforms:
  - decode: {format: json, id: id, time: occurred_at}
  - enrich: {strip_tags: true}
sinks:
  - mongodb: {uri: "%[1]s", database: bench_chaos, collection: "${BENCH_GROUP}", mode: insert}
dead_letter:
  file: {path: "${BENCH_OUT}/dead-letter.jsonl"}
batch: {max_events: 200, max_wait: 50ms}
`

func chaosKinesisRegistry() *pipeline.Registry {
	r := chaosRegistry()
	kinesissource.Register(r)
	kinesissink.Register(r)
	enrich.Register(r)
	return r
}

// TestChaosKinesis runs a small Kinesis chaos profile against the shared
// stack's kinesalite and MongoDB: three `sluice run` consumers sharing a
// stream's leases, 3200 events, a kill -9 (the killed consumer's leases
// are taken over after they expire), a consumer stopped past its lease and
// continued, and a shard split. It waits on the checkpoints reaching every
// shard's end (RunChaos's drain), never on speed, and fails on any lost,
// duplicated or out-of-order event or a checkpoint that moved back.
func TestChaosKinesis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three consumers")
	}
	endpoint, mongoURI := testenv.KinesisEndpoint(t), testenv.MongoURI(t)
	bin := buildSluice(t)
	var progress strings.Builder
	faults := []string{FaultKill9, FaultSplit, FaultSIGSTOP}
	res, err := RunChaos(context.Background(), ChaosOptions{
		Options: Options{
			Registry: chaosKinesisRegistry, Binary: bin, Stream: "kinesis", KinesisEndpoint: endpoint, OutDir: t.TempDir(),
			ConsumerConfig: []byte(fmt.Sprintf(chaosKinesisConsumer, mongoURI)), ConsumerFile: "chaos-kinesis-consumer.yaml",
			Duplicates: 0.02, Poison: 0.01, Seed: 21, Drain: testwait.Bound(), Progress: &progress,
		},
		Consumers: 3, Rate: 400, Duration: 8 * time.Second,
		Faults: faults, EveryMin: time.Second, EveryMax: 2 * time.Second, MinFaults: len(faults),
	})
	if err != nil {
		t.Fatalf("chaos run: %v\nprogress:\n%s", err, progress.String())
	}
	var report strings.Builder
	WriteChaos(&report, res)
	t.Log("\n" + report.String())
	a := res.Audit
	if a.Sent != 3200 || a.Lost != 0 || a.Duplicated != 0 || a.DeadLettered != a.Poison || a.Poison == 0 {
		t.Fatalf("%s (poison %d)", a.Line(), a.Poison)
	}
	checkDeleted(t, res, "collection bench_chaos.bench-chaos-"+res.Stamp, "kinesis stream bench-chaos-"+res.Stamp,
		"leases of group bench-chaos-"+res.Stamp+" on bench-chaos-"+res.Stamp+" in bench_chaos.kinesis_leases")
	o := a.Order
	if o == nil || o.Skipped != "" || o.Pairs < 2 || o.Keys == 0 || o.Violations != 0 || len(o.Regressions) != 0 {
		t.Fatalf("order audit %+v", o)
	}
	seen := map[string]bool{}
	for _, f := range res.Faults {
		if f.Err != "" || f.Class == "crash" {
			t.Errorf("fault %+v", f)
		}
		seen[f.Class] = true
	}
	for _, c := range faults {
		if !seen[c] {
			t.Errorf("no %s in the timeline %+v", c, res.Faults)
		}
	}
	if !strings.HasPrefix(res.DrainedBy, "kinesis checkpoints") {
		t.Errorf("drained by %q", res.DrainedBy)
	}
}

// TestKinesisTailCheckpoints: sequence numbers order by value, a
// checkpoint covers the records up to it, and a checkpoint seen moving
// back is recorded.
func TestKinesisTailCheckpoints(t *testing.T) {
	s := &tailShard{recs: []tailRecord{{seq: "9"}, {seq: "10"}, {seq: "12"}, {seq: "100"}}}
	for _, tc := range []struct {
		cp   string
		want int
	}{{"", 0}, {"9", 1}, {"11", 2}, {"12", 3}, {"100", 4}, {"5", 0}, {kinesissource.ShardEnd, 4}} {
		if got := s.checkpointed(tc.cp); got != tc.want {
			t.Errorf("checkpointed(%q) = %d, want %d", tc.cp, got, tc.want)
		}
	}
	tail := &kinesisTail{cps: map[string]string{}, start: time.Now()}
	for _, step := range []struct {
		cp   string
		back bool
	}{{"", false}, {"10", false}, {"12", false}, {"12", false}, {"9", true}, {"100", false}, {kinesissource.ShardEnd, false}, {"100", true}, {"", true}} {
		n := len(tail.Regressions)
		tail.noteCheckpoint("shardId-0", step.cp)
		if got := len(tail.Regressions) > n; got != step.back {
			t.Errorf("checkpoint %q: moved back %v, want %v (%v)", step.cp, got, step.back, tail.Regressions)
		}
	}
}

// TestTakeover names the stopped consumer's shards and who took them.
func TestTakeover(t *testing.T) {
	before := map[string][]string{"a": {"s1", "s2"}, "b": {"s3"}}
	for _, tc := range []struct {
		after  map[string][]string
		others bool
		want   string
	}{
		{map[string][]string{"b": {"s3", "s1", "s2"}}, true, "its 2 shard lease(s) expired; 2 taken over by other consumers"},
		{map[string][]string{"b": {"s3"}}, true, "its 2 shard lease(s) expired; 0 taken over"},
		{map[string][]string{}, false, "no other consumer"},
		{map[string][]string{"a": {"s1", "s2"}, "b": {"s3"}}, true, "it held no shard lease"},
	} {
		if got := takeover(before, tc.after, tc.others); !strings.Contains(got, tc.want) {
			t.Errorf("takeover(%v) = %q, want %q", tc.after, got, tc.want)
		}
	}
}

// TestKinesisOrderCheckFindsAChildBeforeItsParent: the order check reads
// ingested_at back from MongoDB and flags a key whose child-shard record
// was processed before one of its parent-shard records; ids sent twice and
// keys in one shard only are left out.
func TestKinesisOrderCheckFindsAChildBeforeItsParent(t *testing.T) {
	mongoURI := testenv.MongoURI(t)
	ctx := context.Background()
	coll := "order_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	client, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx) //nolint:errcheck // test cleanup
	c := client.Database("bench_chaos").Collection(coll)
	t.Cleanup(func() { _ = c.Drop(ctx) })
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := func(s int) string { return t0.Add(time.Duration(s) * time.Second).Format(time.RFC3339Nano) }
	docs := []any{
		bson.D{{Key: "_id", Value: "p1"}, {Key: "ingested_at", Value: at(1)}}, // parent, key k1
		bson.D{{Key: "_id", Value: "p2"}, {Key: "ingested_at", Value: at(5)}}, // parent, key k2: after its child's
		bson.D{{Key: "_id", Value: "c1"}, {Key: "ingested_at", Value: at(3)}}, // child, key k1: in order
		bson.D{{Key: "_id", Value: "c2"}, {Key: "ingested_at", Value: at(4)}}, // child, key k2: out of order
		bson.D{{Key: "_id", Value: "dup"}, {Key: "ingested_at", Value: at(0)}},
		bson.D{{Key: "_id", Value: "late"}, {Key: "ingested_at", Value: at(6)}},
	}
	if _, err := c.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	tail := &kinesisTail{order: []string{"parent", "child"}, shards: map[string]*tailShard{
		"parent": {id: "parent", recs: []tailRecord{{"1", "k1", "p1"}, {"2", "k2", "p2"}, {"3", "k3", "dup"}}},
		"child":  {id: "child", parents: []string{"parent"}, recs: []tailRecord{{"4", "k1", "c1"}, {"5", "k2", "c2"}, {"6", "k3", "dup"}}},
	}}
	load := func(mode string) *pipeline.Config {
		cfg, err := pipeline.Load("order.yaml", []byte(fmt.Sprintf(`name: order
source: {generate: {count: 1}}
sinks:
  - mongodb: {uri: %q, database: bench_chaos, collection: %s, mode: %s}
`, mongoURI, coll, mode)), chaosKinesisRegistry(), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := tail.checkOrder(ctx, load("insert"))
	if a.Skipped != "" || a.Pairs != 1 || a.Keys != 2 || a.Violations != 1 || len(a.Examples) != 1 || !strings.Contains(a.Examples[0], "key k2") || a.OK() {
		t.Fatalf("order audit %+v", a)
	}
	tail.shards["child"].recs[1].id = "late" // k2's child record now processed after its parent's
	if a := tail.checkOrder(ctx, load("insert")); a.Keys != 2 || a.Violations != 0 || !a.OK() {
		t.Fatalf("in order: audit %+v", a)
	}
	if a := tail.checkOrder(ctx, load("replace")); !strings.Contains(a.Skipped, "mode: insert") {
		t.Fatalf("a replace sink keeps the last write, not the first: audit %+v, want skipped", a)
	}
}
