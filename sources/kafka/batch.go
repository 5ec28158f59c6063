package kafka

import (
	"strconv"
	"sync"
	"sync/atomic"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/pipeline"
)

// Allocation and lifetime of a batch.
//
// A batch's events, their pointers and their meta pairs live in arrays
// owned by the batch, filled record by record as the partition's reader
// returns them (no slice of kafka-go messages in between). The ids
// ("topic/partition/offset"), the offsets in meta and the header keys and
// values are substrings of one string made per batch, never reused: a
// transform may keep an id (a dedupe window does). Key and Payload are
// kafka-go's own copies of the record, shared without copying.
//
// Once the runner acks the batch nothing references its events any more
// (pipeline.AckFunc's contract), whatever the error: release clears the
// arrays, so they keep no payload or id alive, and keeps up to maxFree of
// them for a later batch of any partition. A batch is released once
// however often its ack is called, even when a repeated ack comes after
// the batch was handed out again (handed). A batch is never reused before
// its ack.

// maxFree bounds the acked batches kept for reuse (each is batch_size
// events, ~250 B an event without headers).
const maxFree = 16

// batch is one partition's records handed to the pipeline as one Read.
type batch struct {
	events []pipeline.Event
	out    []*pipeline.Event
	meta   []pipeline.MetaPair
	text   []byte   // ids and header strings of the batch, one string at the end
	recs   []recRef // per event: where its id and headers are
	hdrs   []hdrRef // every header of the batch, in record order

	first, last int64 // offsets of the first and last record
	hwm         int64 // the partition's high watermark with the last record

	released atomic.Bool
	// handed counts the batch's hand-overs: an ack settles only the
	// hand-over it was made for, so a late repeated ack cannot release
	// the batch while a later hand-over of it is in flight.
	handed atomic.Uint64
}

// recRef is where a record's id is in text ([idStart, idEnd); the offset
// is its tail after the partition's prefix) and which hdrs are its own.
type recRef struct {
	idStart, idEnd int
	hdrEnd         int // hdrs[previous record's hdrEnd : hdrEnd]
}

// hdrRef is a header's meta key ("kafka.header." + key) and value in text.
type hdrRef struct {
	keyStart, keyEnd, valEnd int // the value is [keyEnd, valEnd)
}

// pool holds acked batches for reuse; acks come from the runner's
// goroutines, takes from the partitions' readers.
type pool struct {
	size int // events a batch holds: batch_size
	mu   sync.Mutex
	free []*batch
}

// get returns an acked batch, emptied, or a new one.
func (pl *pool) get() *batch {
	pl.mu.Lock()
	var b *batch
	if k := len(pl.free); k > 0 {
		b, pl.free[k-1] = pl.free[k-1], nil
		pl.free = pl.free[:k-1]
	}
	pl.mu.Unlock()
	if b == nil {
		return &batch{
			events: make([]pipeline.Event, pl.size),
			out:    make([]*pipeline.Event, 0, pl.size),
			meta:   make([]pipeline.MetaPair, 0, 3*pl.size),
			recs:   make([]recRef, 0, pl.size),
		}
	}
	b.released.Store(false)
	return b
}

// put takes back a batch whose events nobody references: acked, or never
// handed out. Its arrays are cleared so they keep nothing alive.
func (pl *pool) put(b *batch) {
	if b.released.Swap(true) {
		return
	}
	clear(b.events[:len(b.recs)])
	clear(b.out)
	clear(b.meta)
	b.out, b.meta, b.text, b.recs, b.hdrs = b.out[:0], b.meta[:0], b.text[:0], b.recs[:0], b.hdrs[:0]
	pl.mu.Lock()
	if len(pl.free) < maxFree {
		pl.free = append(pl.free, b)
	}
	pl.mu.Unlock()
}

// len is the number of records added.
func (b *batch) len() int { return len(b.recs) }

// add appends record m; finish makes the events once all are added.
func (b *batch) add(p *partition, m *kafkago.Message) {
	i := len(b.recs)
	if i == 0 {
		b.first = m.Offset
	}
	b.last, b.hwm = m.Offset, m.HighWaterMark
	b.events[i] = pipeline.Event{Key: m.Key, Payload: m.Value, Time: m.Time}
	idStart := len(b.text)
	b.text = append(b.text, p.idPrefix...)
	b.text = strconv.AppendInt(b.text, m.Offset, 10)
	idEnd := len(b.text)
	for _, h := range m.Headers {
		keyStart := len(b.text)
		b.text = append(b.text, MetaHeaderPrefix...)
		b.text = append(b.text, h.Key...)
		keyEnd := len(b.text)
		b.text = append(b.text, h.Value...)
		b.hdrs = append(b.hdrs, hdrRef{keyStart, keyEnd, len(b.text)})
	}
	b.recs = append(b.recs, recRef{idStart: idStart, idEnd: idEnd, hdrEnd: len(b.hdrs)})
}

// finish sets every event's id and meta from the batch's one string and
// returns the events.
func (b *batch) finish(p *partition) []*pipeline.Event {
	text := string(b.text)
	partitionStr := p.idPrefix[len(p.topic)+1 : len(p.idPrefix)-1]
	hdr := 0
	for i, r := range b.recs {
		ev := &b.events[i]
		ev.ID = text[r.idStart:r.idEnd]
		b.meta = append(b.meta,
			pipeline.MetaPair{Key: MetaTopic, Value: p.topic},
			pipeline.MetaPair{Key: MetaPartition, Value: partitionStr},
			pipeline.MetaPair{Key: MetaOffset, Value: ev.ID[len(p.idPrefix):]},
		)
		for ; hdr < r.hdrEnd; hdr++ {
			h := b.hdrs[hdr]
			b.meta = append(b.meta, pipeline.MetaPair{Key: text[h.keyStart:h.keyEnd], Value: text[h.keyEnd:h.valEnd]})
		}
		b.out = append(b.out, ev)
	}
	// Meta slices are taken once the meta array stopped growing: headers
	// may have made append move it.
	start := 0
	for i, r := range b.recs {
		n := 3 + r.hdrEnd - hdrBefore(b.recs, i)
		b.events[i].Meta = b.meta[start : start+n : start+n]
		start += n
	}
	return b.out
}

// hdrBefore is the number of headers of the records before record i.
func hdrBefore(recs []recRef, i int) int {
	if i == 0 {
		return 0
	}
	return recs[i-1].hdrEnd
}
