package kinesis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

var creds = &awskinesis.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}

type env struct {
	endpoint, mongo, db, stream string
	client                      *kinesis.Client
}

func setup(t *testing.T, shards int32) *env {
	t.Helper()
	e := &env{endpoint: testenv.KinesisEndpoint(t), mongo: testenv.MongoURI(t)}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	e.db, e.stream = "kinesis_"+suffix, "s-"+suffix
	e.client = testenv.KinesisStream(t, e.stream, shards)
	return e
}

type record struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// put writes records from..from+n over keys, with per-key sequence numbers.
func (e *env) put(t *testing.T, from, n, keys int) []string {
	t.Helper()
	var ids []string
	for start := from; start < from+n; start += 250 {
		var entries []types.PutRecordsRequestEntry
		for i := start; i < min(start+250, from+n); i++ {
			r := record{ID: "r" + strconv.Itoa(i), Key: "k" + strconv.Itoa(i%keys), Seq: i}
			b, _ := json.Marshal(r)
			entries = append(entries, types.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(r.Key)})
			ids = append(ids, r.ID)
		}
		e.putAll(t, entries)
	}
	return ids
}

// putAll puts entries, sending the request again when it fails as a
// whole (kinesalite times out under load, as Kinesis can): records it did
// take arrive twice, after their first copies, so first arrivals keep
// their order. A partial refusal fails the test: resending part of a
// request would reorder a key.
func (e *env) putAll(t *testing.T, entries []types.PutRecordsRequestEntry) {
	t.Helper()
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
		}
		var out *kinesis.PutRecordsOutput
		if out, err = e.client.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries}); err != nil {
			continue
		}
		if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
			t.Fatalf("put records: %d of %d refused", n, len(entries))
		}
		return
	}
	t.Fatalf("put records: %v", err)
}

func (e *env) sourceYAML(extra string) string {
	return fmt.Sprintf(`  kinesis:
    stream: %s
    endpoint: %s
    consumer_group: g
    credentials: {access_key_id: test, secret_access_key: test}
    checkpoint: {mongodb: {uri: %q, database: %s}}
    # Long leases: a consumer keeps reading while its store is down until
    # its lease could expire, and a busy machine must not lose one by
    # accident. The takeover test releases a dead consumer's leases itself.
    lease: {duration: 2m, renew_every: 1s}
    poll: {limit: 500, idle_wait: 100ms}
    shard_sync: 500ms
    checkpoint_interval: 200ms
%s`, e.stream, e.endpoint, e.mongo, e.db, extra)
}

// consumer is one in-process pipeline: kinesis source → memory sink.
type consumer struct {
	*pipelinetest.Run
	sink *pipelinetest.Sink
}

func (e *env) start(t *testing.T, register func(*pipeline.Registry)) *consumer {
	t.Helper()
	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	if register == nil {
		kinesissource.Register(reg)
	} else {
		register(reg)
	}
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := "name: kinesis-test\nsource:\n" + e.sourceYAML("") + "sinks: [{mem: {index: 0}}]\nbatch: {max_events: 200, max_wait: 5ms}\nretry: {initial_interval: 5ms, max_interval: 50ms}\n"
	c := &consumer{Run: pipelinetest.Start(t, "k.yaml", doc, reg), sink: sink}
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop stops the consumer; Run's error fails the test.
func (c *consumer) stop(t *testing.T) {
	t.Helper()
	if err := c.Stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func ids(s *pipelinetest.Sink) map[string]int {
	out := map[string]int{}
	for _, w := range s.Writes() {
		out[gjson.Get(w.Body, "id").String()]++
	}
	return out
}

// waitFor waits for progress, bounded only against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, cond, nil)
}

// firstArrivalsInOrder checks that, per key, records first arrived in the
// order they were put.
func firstArrivalsInOrder(t *testing.T, writes []pipelinetest.Write) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int{}
	for _, w := range writes {
		id := gjson.Get(w.Body, "id").String()
		if seen[id] {
			continue
		}
		seen[id] = true
		seq := int(gjson.Get(w.Body, "seq").Int())
		key := gjson.Get(w.Body, "key").String()
		if prev, ok := last[key]; ok && seq < prev {
			t.Fatalf("key %s: seq %d arrived after seq %d", key, seq, prev)
		}
		last[key] = seq
	}
}

func TestConsumeEveryShardInKeyOrder(t *testing.T) {
	e := setup(t, 4)
	want := e.put(t, 0, 2000, 40)
	c := e.start(t, nil)
	waitFor(t, "every record", func() bool { return len(ids(c.sink)) == len(want) })
	firstArrivalsInOrder(t, c.sink.Writes())
	for _, w := range c.sink.Writes()[:1] {
		if w.Key == "" {
			t.Fatal("events carry no partition key")
		}
	}
	if err := c.Pipeline.Readiness(); err != nil {
		t.Fatalf("readiness: %v", err)
	}
}

func TestShardSplitReadsParentsBeforeChildren(t *testing.T) {
	e := setup(t, 1)
	e.put(t, 0, 600, 30)
	c := e.start(t, nil)
	waitFor(t, "the consumer to start", func() bool { return len(ids(c.sink)) > 0 })
	desc, err := e.client.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	parent := desc.Shards[0]
	if _, err := e.client.SplitShard(context.Background(), &kinesis.SplitShardInput{
		StreamName: aws.String(e.stream), ShardToSplit: parent.ShardId, NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	}); err != nil {
		t.Fatalf("split: %v", err)
	}
	testenv.WaitKinesisActive(t, e.client, e.stream)
	e.put(t, 600, 600, 30) // these land in the children
	waitFor(t, "every record across the split", func() bool { return len(ids(c.sink)) == 1200 })
	firstArrivalsInOrder(t, c.sink.Writes())
	store, err := kinesissource.OpenMongoLeases(kinesissource.MongoCheckpoint{URI: e.mongo, Database: e.db}, "g", e.stream)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(context.Background())
	leases, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, l := range leases {
		if l.Shard == aws.ToString(parent.ShardId) && l.Checkpoint != kinesissource.ShardEnd {
			t.Fatalf("parent checkpoint %q, want SHARD_END", l.Checkpoint)
		}
		if slices.Contains(l.Parents, aws.ToString(parent.ShardId)) {
			children++
		}
	}
	if children != 2 {
		t.Fatalf("%d child leases, want 2", children)
	}
}

// flakyStore fails every call while down is set: the checkpoint store is
// unreachable.
type flakyStore struct {
	kinesissource.LeaseStore
	down atomic.Bool
}

var errDown = errors.New("server selection timeout: connection refused")

func (f *flakyStore) Checkpoint(ctx context.Context, shard, owner, pos string) (bool, error) {
	if f.down.Load() {
		return false, errDown
	}
	return f.LeaseStore.Checkpoint(ctx, shard, owner, pos)
}

func (f *flakyStore) Renew(ctx context.Context, shard, owner string, until time.Time) (bool, error) {
	if f.down.Load() {
		return false, errDown
	}
	return f.LeaseStore.Renew(ctx, shard, owner, until)
}

func (f *flakyStore) List(ctx context.Context) ([]kinesissource.Lease, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.LeaseStore.List(ctx)
}

func TestCheckpointStoreUnreachableForAWhile(t *testing.T) {
	e := setup(t, 2)
	e.put(t, 0, 400, 20)
	real, err := kinesissource.OpenMongoLeases(kinesissource.MongoCheckpoint{URI: e.mongo, Database: e.db}, "g", e.stream)
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close(context.Background())
	flaky := &flakyStore{LeaseStore: real}
	c := e.start(t, func(r *pipeline.Registry) {
		pipeline.RegisterSource(r, "kinesis", "test", func(bc pipeline.BuildContext, cfg *kinesissource.Config) (pipeline.Source, error) {
			return kinesissource.New(bc, *cfg, kinesissource.WithLeaseStore(flaky))
		})
	})
	waitFor(t, "the first records", func() bool { return len(ids(c.sink)) == 400 })
	checkpoints := func() map[string]string {
		ls, err := real.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, l := range ls {
			m[l.Shard] = l.Checkpoint
		}
		return m
	}
	waitFor(t, "checkpoints of the first records", func() bool {
		for _, cp := range checkpoints() {
			if cp == "" {
				return false
			}
		}
		return true
	})
	flaky.down.Store(true)
	before := checkpoints()
	e.put(t, 400, 400, 20)
	waitFor(t, "records read while the store is down", func() bool { return len(ids(c.sink)) == 800 })
	if now := checkpoints(); fmt.Sprint(now) != fmt.Sprint(before) {
		t.Fatalf("checkpoints moved while the store was unreachable: %v → %v", before, now)
	}
	waitFor(t, "readiness to report the store", func() bool {
		err := c.Pipeline.Readiness()
		return err != nil && strings.Contains(err.Error(), "connection refused")
	})
	flaky.down.Store(false)
	waitFor(t, "checkpoints to move after recovery", func() bool {
		now := checkpoints()
		for s, cp := range now {
			if cp == before[s] {
				return false
			}
		}
		return true
	})
	e.put(t, 800, 200, 20)
	waitFor(t, "consumption after recovery", func() bool { return len(ids(c.sink)) == 1000 })
}

// TestConsumerKilledLeasesTakenOver runs a second consumer as a child
// process, kills it with SIGKILL, and checks the in-process consumer takes
// its shards over from its checkpoints with nothing lost.
func TestConsumerKilledLeasesTakenOver(t *testing.T) {
	e := setup(t, 4)
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "b.jsonl")
	cfg := filepath.Join(dir, "b.yaml")
	doc := "name: b\nsource:\n" + e.sourceYAML("") + "sinks: [{file: {path: " + out + "}}]\nbatch: {max_events: 100, max_wait: 5ms}\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var want []string
	want = append(want, e.put(t, 0, 800, 40)...)
	b := exec.Command(bin, "run", "-c", cfg)
	var stderr strings.Builder
	b.Stderr = &stderr
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Process.Kill() }()
	waitFor(t, "consumer B to take every shard", func() bool { fi, err := os.Stat(out); return err == nil && fi.Size() > 0 })
	store, err := kinesissource.OpenMongoLeases(kinesissource.MongoCheckpoint{URI: e.mongo, Database: e.db}, "g", e.stream)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(context.Background())
	var ownerB string
	waitFor(t, "consumer B to hold every lease", func() bool {
		ls, err := store.List(context.Background())
		if err != nil || len(ls) != 4 {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" || (ownerB != "" && l.Owner != ownerB) {
				return false
			}
			ownerB = l.Owner
		}
		return true
	})
	a := e.start(t, nil)
	// A joins; with stealing on, the shards balance to two each.
	waitFor(t, "the shards to balance over both consumers", func() bool {
		ls, err := store.List(context.Background())
		if err != nil {
			return false
		}
		per := map[string]int{}
		for _, l := range ls {
			if !l.Expired(time.Now()) {
				per[l.Owner]++
			}
		}
		return len(per) == 2 && slices.Equal(slices.Sorted(maps.Values(per)), []int{2, 2})
	})
	size := func() int64 {
		fi, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size()
	want = append(want, e.put(t, 800, 800, 40)...)
	waitFor(t, "consumer B to store some of the new records", func() bool { return size() > before })
	if err := b.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = b.Wait()
	// A dead consumer's leases would expire after lease.duration; release
	// them now, as if that time had passed.
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner == ownerB {
			if err := store.Release(context.Background(), l.Shard, ownerB); err != nil {
				t.Fatal(err)
			}
		}
	}
	want = append(want, e.put(t, 1600, 400, 40)...)
	union := func() map[string]int {
		got := ids(a.sink)
		data, _ := os.ReadFile(out)
		for _, line := range strings.Split(string(data), "\n") {
			if gjson.Valid(line) {
				got[gjson.Get(line, "id").String()]++
			}
		}
		return got
	}
	waitFor(t, "A to take over B's shards and deliver everything", func() bool {
		got := union()
		for _, id := range want {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, n := range union() {
		dups += n - 1
	}
	t.Logf("%d records, %d delivered twice", len(want), dups)
}
