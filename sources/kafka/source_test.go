package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

const partitions = 12

// cluster starts an in-process kfake cluster (3 brokers, a 12-partition
// topic) reachable over TCP, with short group session timeouts.
func cluster(t *testing.T, topic string) []string {
	t.Helper()
	return testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic), kfake.GroupMinSessionTimeout(200*time.Millisecond))
}

type record struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// produce writes n records over `keys` keys with a per-key sequence, and
// returns the ids written.
func produce(t *testing.T, brokers []string, topic string, from, n, keys int) []string {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	var ids []string
	var msgs []kafkago.Message
	for i := from; i < from+n; i++ {
		r := record{ID: "r" + strconv.Itoa(i), Key: "k" + strconv.Itoa(i%keys), Seq: i}
		b, _ := json.Marshal(r)
		msgs = append(msgs, kafkago.Message{Key: []byte(r.Key), Value: b})
		ids = append(ids, r.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return ids
}

// consumer is one in-process pipeline: kafka source → memory sink.
type consumer struct {
	p        *pipeline.Pipeline
	sink     *pipelinetest.Sink
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

func startConsumer(t *testing.T, brokers []string, topic, group, extra string, sink *pipelinetest.Sink) *consumer {
	t.Helper()
	if sink == nil {
		sink = &pipelinetest.Sink{}
	}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf(`name: kafka-test
source:
  kafka:
    brokers: [%q]
    topic: %s
    group: %s
    commit_interval: 100ms
    session_timeout: 2s
    heartbeat_interval: 200ms
    rebalance_timeout: 5s
    rebalance_drain: 2s
%s
sinks: [{mem: {index: 0}}]
batch: {max_events: 200, max_wait: 5ms}
retry: {initial_interval: 5ms, max_interval: 50ms}
delivery: {lanes: 8, max_in_flight: 16, shutdown_timeout: 10s}
`, strings.Join(brokers, ","), topic, group, extra)
	cfg, err := pipeline.Load("kafka-test.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{p: p, sink: sink, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- p.Run(ctx) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *consumer) stop(t *testing.T) {
	t.Helper()
	c.stopOnce.Do(func() {
		c.cancel()
		select {
		case err := <-c.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("consumer did not stop")
		}
	})
}

func bodyIDs(s *pipelinetest.Sink) map[string]int {
	ids := map[string]int{}
	for _, w := range s.Writes() {
		var r record
		if err := json.Unmarshal([]byte(w.Body), &r); err == nil {
			ids[r.ID]++
		}
	}
	return ids
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// committed returns the group's committed offset per partition (-1: none).
func committed(t *testing.T, brokers []string, group, topic string) map[int]int64 {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second}
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	resp, err := c.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// committedToEnd reports whether every partition's commit reached its end
// (an empty partition has nothing to commit).
func committedToEnd(t *testing.T, brokers []string, group, topic string, hwm map[int]int64) bool {
	got := committed(t, brokers, group, topic)
	for p, end := range hwm {
		if end > 0 && got[p] != end {
			return false
		}
	}
	return true
}

// highWatermarks returns each partition's end offset.
func highWatermarks(t *testing.T, brokers []string, topic string) map[int]int64 {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for i := range partitions {
		req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(i))
	}
	resp, err := c.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.LastOffset
	}
	return out
}

func TestConsumeEverythingInKeyOrderAndCommitToTheEnd(t *testing.T) {
	brokers := cluster(t, "crm.events")
	ids := produce(t, brokers, "crm.events", 0, 5000, 50)
	c := startConsumer(t, brokers, "crm.events", "g1", "", nil)
	waitFor(t, "every record", 30*time.Second, func() bool { return len(bodyIDs(c.sink)) == len(ids) })

	// Per key, the last write of each record must follow the order the
	// records were produced in (retries may rewrite, never reorder).
	last := map[string]int{}
	seqs := map[string][]record{}
	for pos, w := range c.sink.Writes() {
		var r record
		if err := json.Unmarshal([]byte(w.Body), &r); err != nil {
			t.Fatal(err)
		}
		if w.Key != r.Key {
			t.Fatalf("event key %q, record key %q", w.Key, r.Key)
		}
		if _, seen := last[r.ID]; !seen {
			seqs[r.Key] = append(seqs[r.Key], r)
		}
		last[r.ID] = pos
	}
	for key, rs := range seqs {
		slices.SortFunc(rs, func(a, b record) int { return a.Seq - b.Seq })
		for i := 1; i < len(rs); i++ {
			if last[rs[i].ID] < last[rs[i-1].ID] {
				t.Fatalf("key %s: seq %d stored after seq %d", key, rs[i-1].Seq, rs[i].Seq)
			}
		}
	}
	hwm := highWatermarks(t, brokers, "crm.events")
	waitFor(t, "offsets committed to the end", 10*time.Second, func() bool {
		return committedToEnd(t, brokers, "g1", "crm.events", hwm)
	})
	if err := c.p.Readiness(); err != nil {
		t.Fatalf("readiness: %v", err)
	}
}

func TestNoCommitPastFailedRecords(t *testing.T) {
	const failFrom = 100 // the failing partition's records from this offset on fail
	brokers := cluster(t, "ats.events")
	produce(t, brokers, "ats.events", 0, 3000, 40)
	hwm := highWatermarks(t, brokers, "ats.events")
	bad := 0 // the fullest partition fails
	for p, end := range hwm {
		if end > hwm[bad] {
			bad = p
		}
	}
	badStr := strconv.Itoa(bad)
	var failing atomic.Bool
	failing.Store(true)
	var failures atomic.Int64
	sink := &pipelinetest.Sink{}
	sink.WriteFunc = func(ctx context.Context, _ int, batch []*pipeline.Event) error {
		if !failing.Load() {
			return nil
		}
		be := pipeline.NewBatchError()
		for i, ev := range batch {
			p, _ := ev.Meta.Get(kafkasource.MetaPartition)
			off, _ := ev.Meta.Get(kafkasource.MetaOffset)
			if n, _ := strconv.Atoi(off); p == badStr && n >= failFrom {
				be.Fail(i, fmt.Errorf("store unavailable"))
				failures.Add(1)
			}
		}
		return be.Err()
	}
	c := startConsumer(t, brokers, "ats.events", "g2", "", sink)
	if hwm[bad] <= failFrom {
		t.Fatalf("partition %d has only %d records; the test needs more than %d", bad, hwm[bad], failFrom)
	}
	waitFor(t, "writes of the failing partition to fail", 20*time.Second, func() bool { return failures.Load() > 0 })
	// While the failure lasts, the failing partition never commits past
	// its first failed record.
	commitsSeen := 0
	for range 15 {
		got := committed(t, brokers, "g2", "ats.events")
		if got[bad] > failFrom {
			t.Fatalf("partition %d committed at %d, past its first failed record (%d)", bad, got[bad], failFrom)
		}
		for p, off := range got {
			if p != bad && off > 0 {
				commitsSeen++
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if commitsSeen == 0 {
		t.Log("no partition committed during the failure (they share lanes with the failing records)")
	}
	failing.Store(false)
	waitFor(t, "every partition to be delivered and committed after recovery", 30*time.Second, func() bool {
		return committedToEnd(t, brokers, "g2", "ats.events", hwm)
	})
	if got := len(bodyIDs(c.sink)); got != 3000 {
		t.Fatalf("stored %d distinct records, want 3000", got)
	}
}

func TestGroupMembersJoinAndLeaveWithoutLoss(t *testing.T) {
	brokers := cluster(t, "email.events")
	shared := &pipelinetest.Sink{}
	var produced []string
	var pmu sync.Mutex
	stopProducing := make(chan struct{})
	producerDone := make(chan struct{})
	go func() {
		defer close(producerDone)
		for i := 0; ; i++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			ids := produce(t, brokers, "email.events", i*200, 200, 97)
			pmu.Lock()
			produced = append(produced, ids...)
			pmu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	a := startConsumer(t, brokers, "email.events", "g3", "", shared)
	waitFor(t, "member A to consume", 20*time.Second, func() bool { return len(shared.Writes()) > 500 })
	b := startConsumer(t, brokers, "email.events", "g3", "", shared)
	time.Sleep(1500 * time.Millisecond)
	c := startConsumer(t, brokers, "email.events", "g3", "", shared)
	time.Sleep(1500 * time.Millisecond)
	b.stop(t)
	time.Sleep(1500 * time.Millisecond)
	close(stopProducing)
	<-producerDone
	pmu.Lock()
	want := append([]string(nil), produced...)
	pmu.Unlock()
	waitFor(t, "every produced record after the rebalances", 60*time.Second, func() bool {
		got := bodyIDs(shared)
		for _, id := range want {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	dups := 0
	for _, n := range bodyIDs(shared) {
		dups += n - 1
	}
	t.Logf("%d records, %d redelivered across the rebalances", len(want), dups)
	if dups > len(want)/4 {
		t.Fatalf("%d duplicates for %d records: rebalances should only redeliver what was in flight", dups, len(want))
	}
	_ = a
	_ = c
}

func TestUnreachableBrokersAreNotReadyAndNotACrash(t *testing.T) {
	c := startConsumer(t, []string{"127.0.0.1:1"}, "t", "g4", "", nil)
	waitFor(t, "readiness to report the group", 10*time.Second, func() bool {
		err := c.p.Readiness()
		return err != nil && strings.Contains(err.Error(), "g4")
	})
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-c.done:
		t.Fatalf("pipeline stopped on unreachable brokers: %v", err)
	default:
	}
}

func TestConfigErrors(t *testing.T) {
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), &pipelinetest.Sink{})
	for _, tc := range []struct{ kafka, want string }{
		{"{topic: t, group: g}", "source.kafka.brokers: required field is missing"},
		{"{brokers: [], topic: t, group: g}", "source.kafka.brokers: needs at least one broker"},
		{"{brokers: [nohostport], topic: t, group: g}", `source.kafka.brokers: "nohostport" is not host:port`},
		{"{brokers: [a:9092], group: g}", "source.kafka.topic: set topic (or topics)"},
		{"{brokers: [a:9092], topic: t, group: g, sasl: {mechanism: gssapi, username: u, password: p}}", "source.kafka.sasl.mechanism: must be plain, scram-sha-256 or scram-sha-512"},
		{"{brokers: [a:9092], topic: t, group: g, start: middle}", "source.kafka.start: must be earliest or latest"},
		{"{brokers: [a:9092], topic: t, group: g, fetch: {max_wait: 100ms}}", "source.kafka.fetch.max_wait: must be at least 1s"},
	} {
		doc := "name: x\nsource:\n  kafka: " + tc.kafka + "\nsinks: [{mem: {}}]\n"
		_, err := pipeline.Load("k.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), "k.yaml:3: "+tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.kafka, err, tc.want)
		}
	}
}
