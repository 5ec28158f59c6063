package kafkagroup

import (
	"context"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
)

func TestReadComparesCommittedWithEndOffsets(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(3, "progress"))
	ctx := context.Background()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: "progress", Balancer: &kafkago.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafkago.RequireAll} // acks: the records are in before Read
	// Keyed so the partitions get 0, some and more records: p of key k is fixed.
	var msgs []kafkago.Message
	for i := range 60 {
		msgs = append(msgs, kafkago.Message{Key: []byte{byte('a' + i%2)}, Value: []byte("v")})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c := NewClient(brokers, nil)
	commit := func(offsets map[int]int64) {
		t.Helper()
		var oc []kafkago.OffsetCommit
		for p, o := range offsets {
			oc = append(oc, kafkago.OffsetCommit{Partition: p, Offset: o})
		}
		// A simple commit (no generation): an empty group accepts it.
		resp, err := c.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{GroupID: "g", GenerationID: -1, Topics: map[string][]kafkago.OffsetCommit{"progress": oc}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Topics["progress"] {
			if p.Error != nil {
				t.Fatalf("commit %d: %v", p.Partition, p.Error)
			}
		}
	}
	before, err := Read(ctx, c, "g", "progress")
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Partitions) != 3 || before.Lag() != 60 || before.Committed() != 0 || before.Drained() {
		t.Fatalf("before any commit: %s", before)
	}
	ends := map[int]int64{}
	for _, p := range before.Partitions {
		ends[p.ID] = p.End
	}
	for _, tc := range []struct {
		name    string
		commit  map[int]int64 // partition → offset, or -1: its end
		drained bool
		lag     int64
	}{
		{"one partition committed to its end", map[int]int64{0: -1}, false, 60 - ends[0]},
		{"every partition one short", map[int]int64{0: -2, 1: -2, 2: -2}, false, 0},
		{"every partition at its end", map[int]int64{0: -1, 1: -1, 2: -1}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offsets := map[int]int64{}
			var short int64
			for p, o := range tc.commit {
				switch {
				case o == -1:
					offsets[p] = ends[p]
				case o == -2 && ends[p] > 0:
					offsets[p] = ends[p] - 1
					short++
				case o == -2:
					offsets[p] = 0
				}
			}
			commit(offsets)
			got, err := Read(ctx, c, "g", "progress")
			if err != nil {
				t.Fatal(err)
			}
			want := tc.lag
			if tc.name == "every partition one short" {
				want = short
			}
			if got.Drained() != tc.drained || got.Lag() != want {
				t.Fatalf("%s: drained %v lag %d; want drained %v lag %d", got, got.Drained(), got.Lag(), tc.drained, want)
			}
		})
	}
}

func TestReadUnknownTopicIsAnError(t *testing.T) {
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1))
	_, err := Read(context.Background(), NewClient(brokers, nil), "g", "no-such-topic")
	if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("err = %v, want one naming the topic", err)
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Group: "g", Topic: "t", Partitions: []Partition{{ID: 0, Committed: 40, End: 40}, {ID: 1, Committed: -1, End: 12}, {ID: 2, Committed: -1, End: 0}}}
	if got, want := p.String(), "group g on t: lag 12; p0 40/40 p1 -/12 p2 -/0"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if p.Drained() || p.Committed() != 40 {
		t.Fatalf("drained %v committed %d", p.Drained(), p.Committed())
	}
	p.Partitions[1].Committed = 12
	if !p.Drained() {
		t.Fatalf("%s should be drained (an empty partition with no commit counts as drained)", p)
	}
	if (Progress{}).Drained() {
		t.Fatal("no partitions cannot be drained")
	}
}
