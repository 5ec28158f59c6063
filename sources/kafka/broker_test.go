package kafka_test

// Tests that only a real Apache Kafka broker can answer: they run against the
// local test stack's broker (`make testenv`) and are skipped when the stack
// runs kfake instead.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// member is one consumer group member with its own metrics registry.
type member struct {
	*consumer
	reg *prometheus.Registry
}

func startMember(t *testing.T, brokers []string, topic, group string, sink *pipelinetest.Sink) *member {
	t.Helper()
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf(`name: kafka-broker-test
source:
  kafka: {brokers: [%q], topic: %s, group: %s, commit_interval: 100ms, session_timeout: 3s, heartbeat_interval: 300ms, rebalance_timeout: 10s, rebalance_drain: 2s}
sinks: [{mem: {index: 0}}]
batch: {max_events: 200, max_wait: 5ms}
retry: {initial_interval: 5ms, max_interval: 50ms}
delivery: {lanes: 4, max_in_flight: 8, shutdown_timeout: 10s}
`, strings.Join(brokers, ","), topic, group)
	metrics := prometheus.NewRegistry()
	c := &consumer{Run: pipelinetest.Start(t, "kafka-broker-test.yaml", doc, reg, pipeline.WithMetricsRegisterer(metrics)), sink: sink}
	t.Cleanup(func() { c.stop(t) })
	return &member{consumer: c, reg: metrics}
}

func createBrokerTopic(t *testing.T, brokers []string, prefix string) string {
	t.Helper()
	topic := prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(context.Background(), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})
	return topic
}

// TestBrokerGroupRebalanceCommitsAndLag runs two real group members through
// a rebalance on a real broker, reads the group's commits back through the
// admin API (OffsetFetch) against the partitions' end offsets (ListOffsets),
// then holds a second wave of records unwritten and checks that
// sluice_kafka_consumer_lag equals the lag the broker reports.
func TestBrokerGroupRebalanceCommitsAndLag(t *testing.T) {
	brokers := testenv.RealKafkaBrokers(t)
	topic := createBrokerTopic(t, brokers, "sluice-test-group")
	group := topic + "-g"
	ids := produce(t, brokers, topic, 0, 3000, 97)

	shared := &pipelinetest.Sink{}
	a := startMember(t, brokers, topic, group, shared)
	waitUntil(t, "member A to own all 12 partitions", func() bool {
		return pipelinetest.MetricByLabel(t, a.reg, "sluice_kafka_assigned_partitions", "partition")[""] == partitions
	})
	b := startMember(t, brokers, topic, group, shared)
	waitUntil(t, "the rebalance to split the partitions between A and B", func() bool {
		na, nb := pipelinetest.MetricByLabel(t, a.reg, "sluice_kafka_assigned_partitions", "partition")[""], pipelinetest.MetricByLabel(t, b.reg, "sluice_kafka_assigned_partitions", "partition")[""]
		return na > 0 && nb > 0 && na+nb == partitions
	})
	waitUntil(t, "every record", func() bool {
		got := bodyIDs(shared)
		for _, id := range ids {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	hwm := highWatermarks(t, brokers, topic)
	waitUntil(t, "the group's commits, read with OffsetFetch, to reach the end offsets", func() bool {
		return committedToEnd(t, brokers, group, topic, hwm)
	})
	a.stop(t)
	b.stop(t)

	// Second wave: a member whose sink holds every record until released.
	release := make(chan struct{})
	held := &pipelinetest.Sink{WriteFunc: func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	produce(t, brokers, topic, 3000, 600, 97)
	hwm = highWatermarks(t, brokers, topic)
	c := startMember(t, brokers, topic, group, held)
	brokerLag := func() map[string]float64 {
		out := map[string]float64{}
		for p, off := range committed(t, brokers, group, topic) {
			if end := hwm[p]; end > off {
				out[strconv.Itoa(p)] = float64(end - off)
			}
		}
		return out
	}
	want := brokerLag()
	total := 0.0
	for _, v := range want {
		total += v
	}
	if total != 600 {
		t.Fatalf("the broker reports a lag of %v over %v, want 600", total, want)
	}
	var got map[string]float64
	waitUntil(t, "sluice_kafka_consumer_lag to match the broker's lag", func() bool {
		got = pipelinetest.MetricByLabel(t, c.reg, "sluice_kafka_consumer_lag", "partition")
		for p, v := range want {
			if got[p] != v {
				return false
			}
		}
		return true
	})
	for p, v := range got {
		if v != want[p] {
			t.Fatalf("partition %s: sluice_kafka_consumer_lag %v, broker lag %v", p, v, want[p])
		}
	}
	close(release)
	waitUntil(t, "the second wave to be committed", func() bool {
		return committedToEnd(t, brokers, group, topic, hwm)
	})
	waitUntil(t, "sluice_kafka_consumer_lag to drop to 0", func() bool {
		for _, v := range pipelinetest.MetricByLabel(t, c.reg, "sluice_kafka_consumer_lag", "partition") {
			if v != 0 {
				return false
			}
		}
		return true
	})
}

// waitUntil waits on cond with the test hang bound; the broker tests'
// conditions already name what they wait for.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, cond, nil)
}
