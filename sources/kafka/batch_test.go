package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// fakeReader returns its records in turn, forever, with offsets counting
// up from next; it allocates nothing per record.
type fakeReader struct {
	recs []kafkago.Message
	i    int
	next int64
}

func (f *fakeReader) ReadMessage() (kafkago.Message, error) {
	m := f.recs[f.i%len(f.recs)]
	f.i++
	m.Offset, m.HighWaterMark = f.next, f.next+1000
	f.next++
	return m, nil
}

// testSource is a source that is never started, and one partition of it,
// for driving fetch → handOver → Read → ack by hand.
func testSource(t testing.TB, batchSize int) (*Source, *partition) {
	t.Helper()
	var c Config
	c.SetDefaults()
	c.Brokers, c.Topic, c.Group, c.BatchSize = []string{"127.0.0.1:1"}, "crm", "g", batchSize
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{
		topic: "crm", id: 11, idPrefix: "crm/11/",
		tracker: newTracker(-1),
		lag:     s.metrics.lag.WithLabelValues("crm", "11"),
		freed:   make(chan struct{}, 1),
		stale:   func() bool { return false },
	}
	p.committed.Store(-1)
	return s, p
}

// readBatch fills a batch of limit records from r and returns them as Read does.
func readBatch(t *testing.T, s *Source, p *partition, r messageReader, limit int) ([]*pipeline.Event, pipeline.AckFunc) {
	t.Helper()
	ctx := context.Background()
	b := s.pool.get()
	if end, err := s.fill(p, r, b, limit); end || err != nil {
		t.Fatalf("fill: end %v, err %v; want a full batch", end, err)
	}
	s.handOver(ctx, p, b)
	evs, ack, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return evs, ack
}

func TestBatchEvents(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r := &fakeReader{recs: []kafkago.Message{
		{Key: []byte("k0"), Value: []byte(`{"a":0}`), Time: at},
		{Value: []byte(`{"a":1}`), Headers: []kafkago.Header{{Key: "h", Value: []byte("v")}, {Key: "trace", Value: []byte("t-1")}}},
		{Key: []byte("k2"), Value: []byte(`{"a":2}`)},
	}, next: 123456789010}
	s, p := testSource(t, 500)
	evs, ack := readBatch(t, s, p, r, 3)
	defer ack(nil)
	want := []struct {
		id, offset, key, payload string
		headers                  []pipeline.MetaPair
	}{
		{"crm/11/123456789010", "123456789010", "k0", `{"a":0}`, nil},
		{"crm/11/123456789011", "123456789011", "", `{"a":1}`, []pipeline.MetaPair{{Key: MetaHeaderPrefix + "h", Value: "v"}, {Key: MetaHeaderPrefix + "trace", Value: "t-1"}}},
		{"crm/11/123456789012", "123456789012", "k2", `{"a":2}`, nil},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		ev := evs[i]
		off, _ := ev.Meta.Get(MetaOffset)
		part, _ := ev.Meta.Get(MetaPartition)
		topic, _ := ev.Meta.Get(MetaTopic)
		if ev.ID != w.id || off != w.offset || part != "11" || topic != "crm" || string(ev.Key) != w.key || string(ev.Payload) != w.payload {
			t.Errorf("event %d: id %q offset %q partition %q topic %q key %q payload %q; want %+v", i, ev.ID, off, part, topic, ev.Key, ev.Payload, w)
		}
		if got := ev.Meta[3:]; fmt.Sprint(got) != fmt.Sprint(w.headers) || len(ev.Meta) != cap(ev.Meta) {
			t.Errorf("event %d: headers %v (meta len %d cap %d), want %v and no room to append into the next event's meta", i, got, len(ev.Meta), cap(ev.Meta), w.headers)
		}
	}
	if !evs[0].Time.Equal(at) {
		t.Errorf("time %v, want %v", evs[0].Time, at)
	}
	if got := p.highWatermark.Load(); got != 123456789012+1000 {
		t.Errorf("high watermark %d, want the last record's", got)
	}
}

// TestBatchAllocatesPerBatchNotPerRecord: fetching, handing over, reading
// and acking a batch of 500 records with two headers each costs a handful
// of allocations (the batch's one string, its ack and ack span), not one or more per
// record or header, and not the batch's arrays (reused once acked; made
// anew for every batch they cost 46). kafka-go's own copies of key and
// value are made by its reader and are not counted here.
func TestBatchAllocatesPerBatchNotPerRecord(t *testing.T) {
	const batchSize = 500
	recs := make([]kafkago.Message, 7)
	for i := range recs {
		recs[i] = kafkago.Message{Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, `{"id":%d}`, i), Time: time.Now(),
			Headers: []kafkago.Header{{Key: "trace", Value: []byte("abc")}, {Key: "origin", Value: []byte("crm")}}}
	}
	r := &fakeReader{recs: recs}
	s, p := testSource(t, batchSize)
	n := 0
	allocs := testing.AllocsPerRun(20, func() {
		evs, ack := readBatch(t, s, p, r, batchSize)
		n = len(evs)
		ack(nil)
	})
	if n != batchSize {
		t.Fatalf("batches of %d records, want %d", n, batchSize)
	}
	if allocs > 10 {
		t.Errorf("%.0f allocations per batch of %d records with 2 headers each, want a handful per batch", allocs, batchSize)
	}
}

// TestAckedBatchReused: once acked, a batch's arrays serve a later batch
// with nothing of the old events left; a batch not acked yet is never
// reused, and one acked twice is kept once.
func TestAckedBatchReused(t *testing.T) {
	r := &fakeReader{recs: []kafkago.Message{
		{Key: []byte("a"), Value: []byte("1"), Headers: []kafkago.Header{{Key: "h", Value: []byte("x")}}},
		{Key: []byte("b"), Value: []byte("2")},
	}}
	s, p := testSource(t, 4)
	first, ack1 := readBatch(t, s, p, r, 4)
	first[0].Body = []byte(`{"decoded":true}`) // a step decoded it
	ev0 := first[0]
	ack1(nil)
	ack1(nil) // a second ack must not put the batch in the pool twice
	second, ack2 := readBatch(t, s, p, r, 4)
	third, ack3 := readBatch(t, s, p, r, 4)
	tests := []struct {
		name  string
		batch []*pipeline.Event
		first int
	}{
		{"after the ack", second, 4},
		{"while the second is not acked", third, 8},
	}
	for _, tt := range tests {
		for i, ev := range tt.batch {
			n := tt.first + i
			wantKey, wantHeaders := "a", 1
			if n%2 == 1 {
				wantKey, wantHeaders = "b", 0
			}
			off, _ := ev.Meta.Get(MetaOffset)
			if ev.ID != fmt.Sprintf("crm/11/%d", n) || off != fmt.Sprint(n) || string(ev.Key) != wantKey || len(ev.Meta) != 3+wantHeaders || ev.Body != nil {
				t.Errorf("%s: event %d = id %q offset %q key %q meta %v body %q", tt.name, i, ev.ID, off, ev.Key, ev.Meta, ev.Body)
			}
		}
	}
	if second[0] != ev0 {
		t.Error("the acked batch's events were not reused")
	}
	if third[0] == second[0] {
		t.Error("a batch not acked yet was reused")
	}
	ack2(nil)
	ack3(nil)
	if got := len(s.pool.free); got != 2 {
		t.Errorf("%d batches in the pool after 3 batches, one acked twice, were acked; want 2", got)
	}
	// What the pool keeps references nothing of the acked events.
	for _, b := range s.pool.free {
		for i := range b.events {
			if ev := b.events[i]; ev.ID != "" || ev.Key != nil || ev.Payload != nil || ev.Body != nil || ev.Meta != nil {
				t.Errorf("pooled event %d still holds id %q key %q payload %q body %q meta %v", i, ev.ID, ev.Key, ev.Payload, ev.Body, ev.Meta)
			}
		}
		for i, m := range b.meta[:cap(b.meta)] {
			if m != (pipeline.MetaPair{}) {
				t.Errorf("pooled meta pair %d still holds %v", i, m)
			}
		}
	}
}

// BenchmarkBatchPath is the kafka source's own work per record, without
// Kafka: fetch from a reader that has every record ready, hand over, Read
// and ack, in batches of 500 (the reader's cost is kafka-go's and not here).
func BenchmarkBatchPath(b *testing.B) {
	recs := make([]kafkago.Message, 7)
	for i := range recs {
		recs[i] = kafkago.Message{Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, `{"id":%d}`, i), Time: time.Now()}
	}
	r := &fakeReader{recs: recs}
	s, p := testSource(b, 500)
	ctx := context.Background()
	b.ReportAllocs()
	for n := 0; n < b.N; {
		bt := s.pool.get()
		if _, err := s.fill(p, r, bt, min(500, b.N-n)); err != nil {
			b.Fatal(err)
		}
		s.handOver(ctx, p, bt)
		evs, ack, err := s.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
		ack(nil)
	}
}
