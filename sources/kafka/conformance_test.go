package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// TestConformance runs the source table against the shared Kafka broker: a
// fresh one-partition topic and group per case, so the event ids
// ("topic/0/offset") are known when the records are produced. The group's
// committed offsets are the checkpoint a reopened source resumes from.
// batch_size is 4, so one feed spans several batches.
func TestConformance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
		topic, group := "conf-src-"+suffix, "conf-group-"+suffix
		admin := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		t.Cleanup(cancel)
		res, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
		if err == nil {
			err = res.Errors[topic]
		}
		if err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
		t.Cleanup(func() {
			_, _ = admin.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
		})
		produced := 0
		return &conformance.SourceUnderTest{
			Checkpoints: true,
			Feed: func(t *testing.T, n int) []string {
				w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, RequiredAcks: kafkago.RequireAll, BatchTimeout: 2 * time.Millisecond}
				defer w.Close()
				var msgs []kafkago.Message
				var ids []string
				for range n {
					ev := conformance.Event("r"+strconv.Itoa(produced), "k", produced)
					msgs = append(msgs, kafkago.Message{Key: ev.Key, Value: ev.Body})
					ids = append(ids, topic+"/0/"+strconv.Itoa(produced))
					produced++
				}
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					t.Fatalf("produce: %v", err)
				}
				return ids
			},
			Open: func(t *testing.T) pipeline.Source {
				var c kafkasource.Config
				c.SetDefaults()
				c.Brokers, c.Topic, c.Group = brokers, topic, group
				c.BatchSize = 4 // several batches, so acks can settle out of order
				c.CommitInterval = pipeline.Duration(100 * time.Millisecond)
				c.SessionTimeout = pipeline.Duration(30 * time.Second)
				c.HeartbeatInterval = pipeline.Duration(time.Second)
				c.RebalanceTimeout = pipeline.Duration(60 * time.Second)
				c.RebalanceDrain = pipeline.Duration(2 * time.Second)
				if err := c.Validate(); err != nil {
					t.Fatal(err)
				}
				s, err := kafkasource.New(pipelinetest.BuildContext(), c)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				return s
			},
		}
	})
}
