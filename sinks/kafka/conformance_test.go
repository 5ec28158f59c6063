package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
)

const conformanceParts = 3

// TestConformance runs the sink table against the shared Kafka broker: a
// fresh topic per case whose max.message.bytes (4 KiB) is below the sink's,
// so the poison event (8 KiB) is refused by the broker itself.
func TestConformance(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	conformance.TestSink(t, func(t *testing.T) *conformance.SinkUnderTest {
		topic := createTopic(t, brokers, "conformance", conformanceParts, map[string]string{"max.message.bytes": "4096"})
		s := newSink(t, brokers, topic, nil)
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return &conformance.SinkUnderTest{
			Sink: s,
			Kind: conformance.Log,
			ReadBack: func(ctx context.Context) ([]conformance.Record, error) {
				return readTopic(ctx, brokers, topic)
			},
			Poison: func(id, key string) *pipeline.Event {
				ev := conformance.Event(id, key, 0)
				ev.Body = fmt.Appendf(nil, `{"id":%q,"pad":%q}`, id, strings.Repeat("x", 8<<10))
				return ev
			},
			Unreachable: func(t *testing.T) pipeline.Sink {
				return newSink(t, []string{"127.0.0.1:1"}, topic, func(c *kafkasink.Config) { c.WriteTimeout = pipeline.Duration(time.Second) })
			},
		}
	})
}

// waitLeaders waits until every partition of a new topic has a leader
// that serves it. A write before that fails, retryably, with Not Leader For
// Partition: on a fresh KRaft broker the metadata can name a leader before
// the leader has the partition online (a fresh-clone CI run failed so), so
// readiness is a ListOffsets the leader answers for every partition — the
// same lookup a produce goes through.
func waitLeaders(t *testing.T, brokers []string, topic string, parts int) {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	state := "no metadata yet"
	testwait.For(t, "leaders serving every partition of "+topic, func() bool {
		md, err := c.Metadata(context.Background(), &kafkago.MetadataRequest{Topics: []string{topic}})
		if err != nil || len(md.Topics) != 1 {
			state = fmt.Sprintf("metadata: %v", err)
			return false
		}
		tp := md.Topics[0]
		if tp.Error != nil || len(tp.Partitions) != parts {
			state = fmt.Sprintf("topic error %v, %d partitions", tp.Error, len(tp.Partitions))
			return false
		}
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for _, p := range tp.Partitions {
			if p.Error != nil || p.Leader.ID < 0 {
				state = fmt.Sprintf("partition %d: leader %d, error %v", p.ID, p.Leader.ID, p.Error)
				return false
			}
			req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p.ID))
		}
		lo, err := c.ListOffsets(context.Background(), req)
		if err != nil {
			state = fmt.Sprintf("list offsets: %v", err)
			return false
		}
		if len(lo.Topics[topic]) != parts {
			state = fmt.Sprintf("list offsets answered %d of %d partitions", len(lo.Topics[topic]), parts)
			return false
		}
		for _, po := range lo.Topics[topic] {
			if po.Error != nil {
				state = fmt.Sprintf("list offsets of partition %d: %v", po.Partition, po.Error)
				return false
			}
		}
		return true
	}, func() string { return state })
}

// readTopic reads every record of topic up to the partitions' current
// ends; a record's id is its event-id header.
func readTopic(ctx context.Context, brokers []string, topic string) ([]conformance.Record, error) {
	var recs []conformance.Record
	for p := range conformanceParts {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, p)
		if err != nil {
			return nil, err
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil || last == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: time.Second})
		for n := int64(0); n < last; n++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return nil, err
			}
			rec := conformance.Record{Body: m.Value}
			for _, h := range m.Headers {
				if h.Key == pipeline.MetaDeadLetterID {
					rec.ID = string(h.Value)
				}
			}
			recs = append(recs, rec)
		}
		r.Close()
	}
	return recs, nil
}
