package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// TestCommittedOffsetOutsideTheLog: a group's committed offset that is no
// longer in the partition's log is reset as Kafka's auto.offset.reset
// does, on a real broker, with a warning that says what happened:
//   - before the log's start (retention deleted records nobody read):
//     reading starts at the log's start, and the warning counts the
//     records skipped;
//   - past the log's end (the topic was deleted and made again): reading
//     starts where `start` says (earliest here), so the new topic's
//     records are all read rather than waited past.
func TestCommittedOffsetOutsideTheLog(t *testing.T) {
	brokers := testenv.RealKafkaBrokers(t)
	tests := []struct {
		name       string
		commit     int64 // the group's committed offset
		deleteTo   int64 // records before this offset are deleted (0: none)
		firstRead  int   // the first record read
		warning    string
		warningArg string
	}{
		{"before the log's start", 2, 10, 10, "deleted by retention", "skipped=8"},
		{"past the log's end", 100, 0, 0, "past the log's end", "to=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "sluice-test-range-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			group := topic + "-g"
			createOnePartitionTopic(t, brokers, topic)
			var ids []string
			for i := range 20 {
				ids = append(ids, produceTo(t, brokers, topic, i))
			}
			commitOffset(t, brokers, group, topic, tt.commit)
			if tt.deleteTo > 0 {
				deleteRecords(t, brokers, topic, tt.deleteTo)
			}

			logs := &logRecorder{}
			sink := &pipelinetest.Sink{}
			reg := pipeline.NewRegistry()
			kafkasource.Register(reg)
			pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
			doc := fmt.Sprintf("name: range\nsource: {kafka: {brokers: [%q], topic: %s, group: %s, commit_interval: 100ms}}\nsinks: [{mem: {index: 0}}]\n", strings.Join(brokers, ","), topic, group)
			run := pipelinetest.Start(t, "range.yaml", doc, reg, pipeline.WithLogger(slog.New(logs)))
			defer func() {
				if err := run.Stop(t); err != nil {
					t.Errorf("Run: %v", err)
				}
			}()
			want := ids[tt.firstRead:]
			testwait.For(t, "the records in the log", func() bool { return len(bodyIDs(sink)) >= len(want) },
				func() string { return fmt.Sprintf("read %v; logs %q", bodyIDs(sink), logs.matching("", "")) })
			got := bodyIDs(sink)
			for _, id := range ids {
				wantN := 0
				if slices.Contains(want, id) {
					wantN = 1
				}
				if got[id] != wantN {
					t.Errorf("record %s read %d times, want %d", id, got[id], wantN)
				}
			}
			warns := logs.matching("WARN", tt.warning)
			if len(warns) != 1 {
				t.Fatalf("warnings %q about %q; want one (all logs: %q)", warns, tt.warning, logs.matching("", ""))
			}
			if !strings.Contains(warns[0], " "+tt.warningArg) {
				t.Errorf("warning %q, want it to say %s", warns[0], tt.warningArg)
			}
		})
	}
}

// createOnePartitionTopic creates topic with one partition, deleted when
// the test ends.
func createOnePartitionTopic(t *testing.T, brokers []string, topic string) {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: testwait.Bound()}
	resp, err := c.CreateTopics(context.Background(), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})
}

// produceTo writes record i (id "r<i>") to partition 0 of topic, alone, so
// its offset is i.
func produceTo(t *testing.T, brokers []string, topic string, i int) string {
	t.Helper()
	id := "r" + strconv.Itoa(i)
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, kafkago.Message{Value: fmt.Appendf(nil, `{"id":%q,"seq":%d}`, id, i)}); err != nil {
		t.Fatalf("produce %s: %v", id, err)
	}
	return id
}

// commitOffset commits offset for partition 0 as a group with no members
// (a simple commit: generation -1), as a tool resetting offsets does.
func commitOffset(t *testing.T, brokers []string, group, topic string, offset int64) {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: testwait.Bound()}
	resp, err := c.OffsetCommit(context.Background(), &kafkago.OffsetCommitRequest{
		GroupID: group, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{topic: {{Partition: 0, Offset: offset}}},
	})
	if err == nil {
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				err = p.Error
			}
		}
	}
	if err != nil {
		t.Fatalf("commit offset %d for group %s: %v", offset, group, err)
	}
}

// deleteRecords deletes partition 0's records before offset, as retention
// does. kafka-go has no DeleteRecords; franz-go's client sends it (test
// only).
func deleteRecords(t *testing.T, brokers []string, topic string, before int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = int32(testwait.Bound().Milliseconds())
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && (len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1) {
		err = fmt.Errorf("answer for %d topics", len(resp.Topics))
	}
	if err == nil {
		p := resp.Topics[0].Partitions[0]
		err = kerrOf(p.ErrorCode)
		if err == nil && p.LowWatermark != before {
			err = fmt.Errorf("log start %d after the deletion, want %d", p.LowWatermark, before)
		}
	}
	if err != nil {
		t.Fatalf("delete records of %s before %d: %v", topic, before, err)
	}
}

func kerrOf(code int16) error {
	if code == 0 {
		return nil
	}
	return kafkago.Error(code)
}
