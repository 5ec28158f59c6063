package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
)

const partitions = 12

func newSink(t *testing.T, brokers []string, topic string, mutate func(*kafkasink.Config)) *kafkasink.Sink {
	t.Helper()
	var c kafkasink.Config
	c.SetDefaults()
	c.Brokers = brokers
	c.Topic = *pipeline.MustParseTemplate(topic)
	if mutate != nil {
		mutate(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := kafkasink.New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func event(i int, key, source string, size int) *pipeline.Event {
	body := fmt.Sprintf(`{"id":"e%d","source":%q,"pad":%q}`, i, source, strings.Repeat("x", size))
	return &pipeline.Event{ID: "e" + strconv.Itoa(i), Key: []byte(key), Time: time.Now(), Payload: []byte(body), Body: []byte(body)}
}

// readAll reads every record of topic, per partition.
func readAll(t *testing.T, brokers []string, topic string) map[int][]kafkago.Message {
	t.Helper()
	out := map[int][]kafkago.Message{}
	for p := range partitions {
		conn, err := kafkago.DialLeader(context.Background(), "tcp", brokers[0], topic, p)
		if err != nil {
			t.Fatalf("dial leader of %s/%d: %v", topic, p, err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if last == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		for int64(len(out[p])) < last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out[p] = append(out[p], m)
		}
		cancel()
		r.Close()
	}
	return out
}

func TestKeysLandWhereJavaClientsPutThem(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(partitions, "crm.events"))
	s := newSink(t, brokers, "crm.events", nil)
	var batch []*pipeline.Event
	for i := range 600 {
		batch = append(batch, event(i, "contact-"+strconv.Itoa(i%60), "salesforce", 100))
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// franz-go's key partitioner hashes keys with murmur2 exactly as the
	// Java client does: an independent implementation to agree with.
	java := kgo.StickyKeyPartitioner(nil).ForTopic("crm.events")
	total := 0
	for p, msgs := range readAll(t, brokers, "crm.events") {
		lastSeq := map[string]int{}
		for _, m := range msgs {
			total++
			if want := java.Partition(&kgo.Record{Key: m.Key}, partitions); want != p {
				t.Fatalf("key %s in partition %d, the Java partitioner says %d", m.Key, p, want)
			}
			var id string
			for _, h := range m.Headers {
				if h.Key == "sluice.id" {
					id = string(h.Value)
				}
			}
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "e"))
			if prev, ok := lastSeq[string(m.Key)]; ok && n < prev {
				t.Fatalf("key %s: e%d after e%d", m.Key, n, prev)
			}
			lastSeq[string(m.Key)] = n
		}
	}
	if total != 600 {
		t.Fatalf("read %d records, want 600", total)
	}
}

func TestTopicTemplateAndPerRecordFailures(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(partitions, "crm.salesforce", "crm.hubspot"))
	s := newSink(t, brokers, "crm.{{source}}", func(c *kafkasink.Config) { c.MaxMessageBytes = 4096 })
	batch := []*pipeline.Event{
		event(0, "a", "salesforce", 10),
		event(1, "b", "hubspot", 10),
		event(2, "c", "salesforce", 8000),                         // over max_message_bytes
		{ID: "e3", Key: []byte("d"), Body: []byte(`{"id":"e3"}`)}, // no source field for the topic
		event(4, "e", "hubspot", 10),
	}
	err := s.Write(context.Background(), batch)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 2 {
		t.Fatalf("err = %v, want a BatchError for events 2 and 3", err)
	}
	for _, f := range be.Failures {
		if (f.Index != 2 && f.Index != 3) || !pipeline.IsPermanent(f.Err) {
			t.Fatalf("failure %d: %v (permanent %v)", f.Index, f.Err, pipeline.IsPermanent(f.Err))
		}
	}
	count := func(topic string) int {
		n := 0
		for _, msgs := range readAll(t, brokers, topic) {
			n += len(msgs)
		}
		return n
	}
	if sf, hs := count("crm.salesforce"), count("crm.hubspot"); sf != 1 || hs != 2 {
		t.Fatalf("crm.salesforce has %d, crm.hubspot %d; want 1 and 2", sf, hs)
	}
}

func TestUnreachableBrokerIsRetryable(t *testing.T) {
	s := newSink(t, []string{"127.0.0.1:1"}, "t", func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Write(ctx, []*pipeline.Event{event(0, "k", "x", 1)})
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

// TestReadinessFollowsTheBrokers: /readyz sees the sink's brokers. Not
// ready before the first probe and while the brokers are gone or the
// topic is missing; ready while they answer.
func TestReadinessFollowsTheBrokers(t *testing.T) {
	waitReady := func(t *testing.T, s *kafkasink.Sink, want bool, contains string) {
		t.Helper()
		var err error
		testwait.For(t, fmt.Sprintf("readiness %v (%q)", want, contains), func() bool {
			err = s.Ready()
			return (err == nil) == want && (contains == "" || (err != nil && strings.Contains(err.Error(), contains)))
		}, func() string { return fmt.Sprintf("Ready() = %v", err) })
	}
	t.Run("brokers come and go", func(t *testing.T) {
		cluster := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "up"))
		s := newSink(t, cluster.ListenAddrs(), "up", func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
		if s.Ready() == nil {
			t.Fatal("ready before any probe")
		}
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, s, true, "")
		cluster.Close()
		waitReady(t, s, false, "unreachable")
	})
	t.Run("unreachable from the start", func(t *testing.T) {
		s := newSink(t, []string{"127.0.0.1:1"}, "t", func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
		if err := s.Start(t.Context()); err != nil {
			t.Fatalf("Start must not wait for the brokers: %v", err)
		}
		waitReady(t, s, false, "unreachable")
	})
	t.Run("missing topic", func(t *testing.T) {
		brokers := testenv.StartKafka(t, kfake.NumBrokers(1))
		s := newSink(t, brokers, "nope", func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, s, false, "topic nope")
		// A broker that creates topics on metadata requests must not get
		// one from the probe when the sink says not to.
		creating := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		strict := newSink(t, creating, "not.created", func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
		if err := strict.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, strict, false, "topic not.created")
		time.Sleep(2500 * time.Millisecond) // two more probes: a created topic would make it ready
		if err := strict.Ready(); err == nil {
			t.Fatal("the probe created the topic: ready with auto_create_topics off")
		}
		auto := newSink(t, brokers, "nope", func(c *kafkasink.Config) { c.AutoCreateTopics = true })
		if err := auto.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitReady(t, auto, true, "")
	})
}
