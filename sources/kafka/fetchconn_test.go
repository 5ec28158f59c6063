package kafka

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
)

// fetcherOn is a fetcher of partition 11 of topic crm on a kfake cluster,
// and the cluster.
func fetcherOn(t *testing.T) (*fetcher, *kfake.Cluster) {
	t.Helper()
	c := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(12, "crm"))
	s, p := testSource(t, 500)
	s.conn.Brokers = c.ListenAddrs()
	f := &fetcher{s: s, p: p, offset: kafkago.FirstOffset}
	t.Cleanup(f.close)
	return f, c
}

// TestIdleFetchKeepsTheConnection: a fetch on a partition read to its end
// that the broker answers empty after fetch.max_wait (kafka-go reports it
// as RequestTimedOut) is the long poll working, not a broken connection:
// the partition fetches again on the same connection, without dialing its
// leader (metadata, ListOffsets, TLS and SASL handshakes) every max_wait.
func TestIdleFetchKeepsTheConnection(t *testing.T) {
	f, c := fetcherOn(t)
	var listOffsets atomic.Int32
	c.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		listOffsets.Add(1)
		return nil, nil, false
	})
	ctx := context.Background()
	if err := f.fetchOnce(ctx); err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	conn, dialed := f.conn, listOffsets.Load()
	for i := range 2 {
		if err := f.fetchOnce(ctx); err != nil {
			t.Fatalf("idle fetch %d: %v", i, err)
		}
		if f.conn != conn || listOffsets.Load() != dialed {
			t.Fatalf("idle fetch %d: connection %p (was %p), %d ListOffsets requests (was %d): an empty long poll dropped the connection and dialed the leader again",
				i, f.conn, conn, listOffsets.Load(), dialed)
		}
	}
	if f.offset != 0 {
		t.Errorf("offset %d after idle fetches of an empty partition, want 0", f.offset)
	}
	// The kept connection reads what comes next.
	produceTo11(t, c, "a", "b")
	if err := f.fetchOnce(ctx); err != nil {
		t.Fatalf("fetch after the idle ones: %v", err)
	}
	evs, ack, err := f.s.Read(ctx)
	if err != nil || len(evs) != 2 || evs[0].ID != "crm/11/0" || evs[1].ID != "crm/11/1" || f.conn != conn {
		t.Fatalf("read %d events (%v), connection %p (was %p); want crm/11/0 and 1 on the same connection", len(evs), err, f.conn, conn)
	}
	ack(nil)
}

// produceTo11 writes one record per value to partition 11 of crm.
func produceTo11(t *testing.T, c *kfake.Cluster, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "crm", Partition: 11, Value: []byte(v)}).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
}

// compactedBatch is a record batch of offsets first..first+span-1 of which
// only the first kept records remain, as Kafka's log cleaner leaves a batch
// whose last records it removed: the batch keeps its last offset.
func compactedBatch(first int64, span, kept int) []byte {
	var recs []byte
	for i := range kept {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte{'v', byte('0' + i)}}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // a one-byte varint 0 stood for Length
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset: first, Magic: 2, LastOffsetDelta: int32(span - 1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(kept), Records: recs,
	}
	enc := b.AppendTo(nil)
	b.Length = int32(len(enc) - 12)
	b.CRC = int32(crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// TestFetchSkipsACompactedBatchTail: a batch whose last records the log
// cleaner removed (offsets 0–4, records 0–2 kept) is read up to its last
// offset: the next fetch asks for offset 5, not 3 — which the broker would
// answer with the same batch again, read to its end without a record, and
// the partition would fetch it again at once, forever (until new records
// came), not moving its offset.
func TestFetchSkipsACompactedBatchTail(t *testing.T) {
	f, c := fetcherOn(t)
	var mu sync.Mutex
	var fetchedAt []int64
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.FetchRequest)
		at := req.Topics[0].Partitions[0].FetchOffset
		mu.Lock()
		fetchedAt = append(fetchedAt, at)
		mu.Unlock()
		return testenv.KfakeFetchAnswer(kreq, func(rp *kmsg.FetchResponseTopicPartition) {
			rp.Partition, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 11, 5, 5, 0
			rp.RecordBatches = []byte{} // at 5: the partition is read to its end
			if at < 5 {
				rp.RecordBatches = compactedBatch(0, 5, 3)
			}
		}), nil, true
	})
	ctx := context.Background()
	for range 2 {
		if err := f.fetchOnce(ctx); err != nil {
			t.Fatalf("fetch: %v", err)
		}
	}
	evs, ack, err := f.s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ack(nil)
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	if fmt.Sprint(ids) != "[crm/11/0 crm/11/1 crm/11/2]" {
		t.Errorf("read %v, want crm/11/0 to 2", ids)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(fetchedAt) != "[0 5]" || f.offset != 5 {
		t.Errorf("fetched at offsets %v, offset now %d; want [0 5] and 5: the batch's removed tail (3, 4) is to be skipped", fetchedAt, f.offset)
	}
}

// TestLeaderChangeKeepsTheOffset: after a leader change, the new leader's
// high watermark may lag the records already read for a moment (ListOffsets
// v1, which kafka-go sends, answers it without OFFSET_NOT_AVAILABLE). The
// partition's offset is then past the end the new leader reports, but not
// out of its log: reading goes on from it, rather than resetting to the
// log's start (every record read again) as `start: earliest` says for an
// offset the broker refused as out of range.
func TestLeaderChangeKeepsTheOffset(t *testing.T) {
	f, c := fetcherOn(t)
	produceTo11(t, c, "a", "b", "c")
	ctx := context.Background()
	if err := f.fetchOnce(ctx); err != nil || f.offset != 3 {
		t.Fatalf("first fetch: offset %d, %v; want 3", f.offset, err)
	}
	_, ack, err := f.s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ack(nil)
	// The leader moves: one fetch refused, then a ListOffsets for the end
	// answered with the new leader's lagging high watermark.
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		return testenv.KfakeFetchAnswer(kreq, func(rp *kmsg.FetchResponseTopicPartition) {
			rp.Partition, rp.ErrorCode = 11, int16(kafkago.NotLeaderForPartition)
		}), nil, true
	})
	c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ListOffsetsRequest)
		if req.Topics[0].Partitions[0].Timestamp != -1 {
			return nil, nil, false
		}
		c.DropControl()
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = req.Topics[0].Topic
		rp := kmsg.NewListOffsetsResponseTopicPartition()
		rp.Partition, rp.Offset = 11, 1
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	if err := f.fetchOnce(ctx); !errors.Is(err, kafkago.NotLeaderForPartition) {
		t.Fatalf("fetch on the old leader: %v, want NotLeaderForPartition", err)
	}
	produceTo11(t, c, "d")
	if err := f.fetchOnce(ctx); err != nil {
		t.Fatalf("fetch on the new leader: %v", err)
	}
	evs, ack, err := f.s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ack(nil)
	if len(evs) != 1 || evs[0].ID != "crm/11/3" {
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		t.Fatalf("read %v after the leader change, want only crm/11/3: the records already read were read again", ids)
	}
}

// TestBrokerTimeoutBacksOff: a fetch the broker answers at once with
// REQUEST_TIMED_OUT for the partition is an error to retry with backoff
// (and a new connection: the rest of that answer is unread), not an idle
// long poll to repeat at once — which, answered so again and again, would
// dial the leader in a loop without pause.
func TestBrokerTimeoutBacksOff(t *testing.T) {
	f, c := fetcherOn(t)
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return testenv.KfakeFetchAnswer(kreq, func(rp *kmsg.FetchResponseTopicPartition) {
			rp.Partition, rp.ErrorCode = 11, int16(kafkago.RequestTimedOut)
		}), nil, true
	})
	err := f.fetchOnce(context.Background())
	if !errors.Is(err, kafkago.RequestTimedOut) || f.conn != nil {
		t.Fatalf("fetch answered REQUEST_TIMED_OUT: %v, connection %p; want the error (retried with backoff) and the connection closed", err, f.conn)
	}
}
