package kafka_test

// Tests that only a real Apache Kafka broker can answer: they run against the
// local test stack's broker (`make testenv`) and are skipped when the stack
// runs kfake instead.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// createTopic creates a fresh topic with the given partitions and configs
// on the real broker, waits until its leaders serve it, and deletes it at
// the end.
func createTopic(t *testing.T, brokers []string, prefix string, parts int, configs map[string]string) string {
	t.Helper()
	topic := prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	var entries []kafkago.ConfigEntry
	for k, v := range configs {
		entries = append(entries, kafkago.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{
		{Topic: topic, NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: entries},
	}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})
	waitLeaders(t, brokers, topic, parts)
	return topic
}

// TestBrokerRejectsRecordOverMessageMaxBytes: the topic's max.message.bytes
// is below the sink's max_message_bytes, so only the broker can refuse the
// large record (MESSAGE_TOO_LARGE). That record is dead-lettered; the small
// records written in the same call, to the same partition, are stored.
func TestBrokerRejectsRecordOverMessageMaxBytes(t *testing.T) {
	brokers := testenv.RealKafkaBrokers(t)
	topic := createTopic(t, brokers, "sluice-test-big", 1, map[string]string{"max.message.bytes": "20000"})
	s := newSink(t, brokers, topic, nil) // max_message_bytes: 1MiB, the default
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	batch := []*pipeline.Event{
		event(0, "a", "x", 100),
		event(1, "a", "x", 60000), // over the topic's max.message.bytes
		event(2, "a", "x", 100),
		event(3, "b", "x", 100),
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	err := s.Write(ctx, batch)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 1 || be.Failures[0].Index != 1 {
		t.Fatalf("err = %v, want a BatchError for event 1 only", err)
	}
	if f := be.Failures[0].Err; !pipeline.IsPermanent(f) || !strings.Contains(strings.ToLower(f.Error()), "too large") {
		t.Fatalf("event 1: %v (permanent %v), want a permanent 'too large' error", f, pipeline.IsPermanent(f))
	}
	conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	if last != 3 {
		t.Fatalf("the topic holds %d records, want 3 (events 0, 2, 3)", last)
	}
}
