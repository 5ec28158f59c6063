package kafka

import (
	"context"
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
