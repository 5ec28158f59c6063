package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

const partitions = 12

// cluster starts an in-process kfake cluster (3 brokers, a 12-partition
// topic) reachable over TCP. Group timeouts are Kafka's usual ones: the
// tests ask for the rebalances they want (members joining and leaving).
func cluster(t *testing.T, topic string) []string {
	t.Helper()
	return testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic))
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
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return ids
}

// consumer is one in-process pipeline: kafka source → memory sink.
type consumer struct {
	*pipelinetest.Run
	sink *pipelinetest.Sink
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
    # Generous, so a busy machine never drops a member by accident: a
    # missed heartbeat must not be what rebalances the group.
    session_timeout: 30s
    heartbeat_interval: 1s
    rebalance_timeout: 60s
    rebalance_drain: 2s
%s
sinks: [{mem: {index: 0}}]
batch: {max_events: 200, max_wait: 5ms}
retry: {initial_interval: 5ms, max_interval: 50ms}
delivery: {lanes: 8, max_in_flight: 16, shutdown_timeout: 10s}
`, strings.Join(brokers, ","), topic, group, extra)
	c := &consumer{Run: pipelinetest.Start(t, "kafka-test.yaml", doc, reg), sink: sink}
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

// waitFor waits for progress, bounded only against a hang; state says
// what is stuck then.
func waitFor(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	testwait.ForEvery(t, 20*time.Millisecond, what, cond, state)
}

// progress is the group's committed offsets against the end offsets and
// what the sink holds, for a hang's report.
func progress(brokers []string, group, topic string, sink *pipelinetest.Sink) func() string {
	return func() string {
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		defer cancel()
		p, err := kafkagroup.Read(ctx, kafkagroup.NewClient(brokers, nil), group, topic)
		return fmt.Sprintf("%s (err %v); sink: %d writes, %d distinct records", p, err, len(sink.Writes()), len(bodyIDs(sink)))
	}
}

// waitMembers waits until the group is stable with n members: the
// rebalance a test asked for (a member joining or leaving) is done.
func waitMembers(t *testing.T, brokers []string, group string, n int) {
	t.Helper()
	c := kafkagroup.NewClient(brokers, nil)
	var state string
	waitFor(t, fmt.Sprintf("group %s stable with %d members", group, n), func() bool {
		resp, err := c.DescribeGroups(context.Background(), &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(resp.Groups) != 1 {
			state = fmt.Sprintf("describe: %v", err)
			return false
		}
		g := resp.Groups[0]
		state = fmt.Sprintf("%s with %d members", g.GroupState, len(g.Members))
		return g.GroupState == "Stable" && len(g.Members) == n
	}, func() string { return state })
}

// committed returns the group's committed offset per partition (-1: none).
func committed(t *testing.T, brokers []string, group, topic string) map[int]int64 {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: time.Minute}
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
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: time.Minute}
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
	waitFor(t, "every record", func() bool { return len(bodyIDs(c.sink)) == len(ids) }, progress(brokers, "g1", "crm.events", c.sink))

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
	waitFor(t, "offsets committed to the end", func() bool {
		return committedToEnd(t, brokers, "g1", "crm.events", hwm)
	}, progress(brokers, "g1", "crm.events", c.sink))
	if err := c.Pipeline.Readiness(); err != nil {
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
	waitFor(t, "writes of the failing partition to fail", func() bool { return failures.Load() > 0 }, progress(brokers, "g2", "ats.events", sink))
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
	waitFor(t, "every partition to be delivered and committed after recovery", func() bool {
		return committedToEnd(t, brokers, "g2", "ats.events", hwm)
	}, progress(brokers, "g2", "ats.events", sink))
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
	state := progress(brokers, "g3", "email.events", shared)
	// Each step waits for the rebalance it causes and for records stored
	// after it, instead of sleeping and hoping it happened.
	storedMore := func(what string) {
		t.Helper()
		before := len(shared.Writes())
		waitFor(t, what, func() bool { return len(shared.Writes()) > before+200 }, state)
	}
	storedMore("member A to consume")
	b := startConsumer(t, brokers, "email.events", "g3", "", shared)
	waitMembers(t, brokers, "g3", 2)
	storedMore("records stored after B joined")
	c := startConsumer(t, brokers, "email.events", "g3", "", shared)
	waitMembers(t, brokers, "g3", 3)
	storedMore("records stored after C joined")
	b.stop(t)
	waitMembers(t, brokers, "g3", 2)
	storedMore("records stored after B left")
	close(stopProducing)
	<-producerDone
	pmu.Lock()
	want := append([]string(nil), produced...)
	pmu.Unlock()
	waitFor(t, "every produced record after the rebalances", func() bool {
		got := bodyIDs(shared)
		for _, id := range want {
			if got[id] == 0 {
				return false
			}
		}
		return true
	}, state)
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
	waitFor(t, "readiness to report the group", func() bool {
		err := c.Pipeline.Readiness()
		return err != nil && strings.Contains(err.Error(), "g4")
	}, func() string { return fmt.Sprintf("readiness: %v", c.Pipeline.Readiness()) })
	time.Sleep(500 * time.Millisecond)
	select {
	case <-c.Done():
		t.Fatalf("pipeline stopped on unreachable brokers: %v", c.Stop(t))
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
		{"{brokers: [a:9092], topic: t, group: g, fetch: {max_bytes: 3GiB}}", "source.kafka.fetch.max_bytes: must be at most 1GiB"},
		{"{brokers: [a:9092], topic: t, group: g, fetch: {min_bytes: 2GiB, max_bytes: 3GiB}}", "source.kafka.fetch.max_bytes: must be at most 1GiB"},
	} {
		doc := "name: x\nsource:\n  kafka: " + tc.kafka + "\nsinks: [{mem: {}}]\n"
		_, err := pipeline.Load("k.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), "k.yaml:3: "+tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.kafka, err, tc.want)
		}
	}
}
