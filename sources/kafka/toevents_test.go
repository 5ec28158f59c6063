package kafka

import (
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

func TestToEvents(t *testing.T) {
	p := &partition{topic: "crm", id: 11, idPrefix: "crm/11/"}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	msgs := []kafkago.Message{
		{Offset: 0, Key: []byte("k0"), Value: []byte(`{"a":0}`), Time: at},
		{Offset: 7, Value: []byte(`{"a":7}`), Headers: []kafkago.Header{{Key: "h", Value: []byte("v")}}},
		{Offset: 123456789012, Key: []byte("k2"), Value: []byte(`{"a":2}`)},
	}
	evs := toEvents(p, msgs)
	want := []struct{ id, offset, key, payload, header string }{
		{"crm/11/0", "0", "k0", `{"a":0}`, ""},
		{"crm/11/7", "7", "", `{"a":7}`, "v"},
		{"crm/11/123456789012", "123456789012", "k2", `{"a":2}`, ""},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		ev := evs[i]
		off, _ := ev.Meta.Get(MetaOffset)
		part, _ := ev.Meta.Get(MetaPartition)
		topic, _ := ev.Meta.Get(MetaTopic)
		h, _ := ev.Meta.Get(MetaHeaderPrefix + "h")
		if ev.ID != w.id || off != w.offset || part != "11" || topic != "crm" || string(ev.Key) != w.key || string(ev.Payload) != w.payload || h != w.header {
			t.Errorf("event %d: id %q offset %q partition %q topic %q key %q payload %q header %q; want %+v", i, ev.ID, off, part, topic, ev.Key, ev.Payload, h, w)
		}
	}
	if !evs[0].Time.Equal(at) {
		t.Errorf("time %v, want %v", evs[0].Time, at)
	}
	// The ids cost one allocation per batch, not one per record.
	many := make([]kafkago.Message, 500)
	for i := range many {
		many[i].Offset = int64(1000 + i)
	}
	if allocs := testing.AllocsPerRun(20, func() { toEvents(p, many) }); allocs > 8 {
		t.Errorf("%.0f allocations for 500 records without headers, want a handful per batch", allocs)
	}
}
