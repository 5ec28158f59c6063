package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
)

// The run ends on the group's committed offsets, read from the broker,
// never on how many events the consumer read: after a rebalance the
// redelivered events reach any count before every event is in (the old
// check stopped runs early and the audit reported loss).
func TestDrainCheckWaitsForCommittedOffsets(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(4, "drain"))
	ctx := context.Background()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "drain", Balancer: &kafkago.RoundRobin{}, BatchTimeout: time.Millisecond}
	var msgs []kafkago.Message
	for range 40 {
		msgs = append(msgs, kafkago.Message{Value: []byte(`{"id":"x"}`)})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	vars := map[string]string{"SLUICE_KAFKA_BROKERS": strings.Join(brokers, ","), "BENCH_TOPIC": "drain", "BENCH_GROUP": "drain-g", "BENCH_OUT": t.TempDir()}
	cfg, err := pipeline.Load("file-consumer.yaml", []byte(fileConsumer), registry(nil)(), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	check := newDrainCheck(Options{Brokers: vars["SLUICE_KAFKA_BROKERS"]}, cfg, nil, 40)
	if check.By != "kafka committed offsets" {
		t.Fatalf("drain judged by %q, want kafka committed offsets", check.By)
	}
	admin := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	commit := func(offset int64) {
		t.Helper()
		var oc []kafkago.OffsetCommit
		for p := range 4 {
			oc = append(oc, kafkago.OffsetCommit{Partition: p, Offset: offset})
		}
		if _, err := admin.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: "drain-g", GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{"drain": oc}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		commit int64 // per partition; -1 none
		done   bool
	}{
		{"nothing committed", -1, false},
		{"committed short of the end", 9, false},
		{"committed to the end", 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.commit >= 0 {
				commit(tc.commit)
			}
			done, where, err := check.check(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if done != tc.done {
				t.Fatalf("drained = %v (%s), want %v", done, where, tc.done)
			}
		})
	}
}
