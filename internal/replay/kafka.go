package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/kafkaconn"
)

// topicReader reads a dead-letter topic partition by partition, each up to
// the end offset it had when the reader was opened: dead letters that
// arrive later (events the replay fails again) are not read.
type topicReader struct {
	conn  *kafkaconn.Conn
	topic string
	log   *slog.Logger
	spans []partSpan
	total int64
	cur   int // index into spans
	r     *kafkago.Reader
	max   int
}

type partSpan struct {
	id         int
	first, end int64
}

// openTopic snapshots the end offsets of topic.
func openTopic(ctx context.Context, conn *kafkaconn.Conn, topic string, batch int, log *slog.Logger) (*topicReader, error) {
	client := conn.Client()
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	offsets, err := conn.Offsets(ctx, client, topic, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot the end offsets of %s: %w", topic, err)
	}
	t := &topicReader{conn: conn, topic: topic, log: log, max: batch}
	for id := range len(offsets) + 1 { // partitions are 0..n-1; tolerate gaps
		if sp, ok := offsets[id]; ok && sp.End > sp.First {
			t.spans = append(t.spans, partSpan{id: id, first: sp.First, end: sp.End})
			t.total += sp.End - sp.First
		}
	}
	return t, nil
}

func (t *topicReader) Total() int64 { return t.total }

func (t *topicReader) Describe() string {
	s := t.topic + " up to end offsets"
	if len(t.spans) == 0 {
		return t.topic + " (empty)"
	}
	for i, sp := range t.spans {
		if i > 0 {
			s += ","
		}
		s += " " + strconv.Itoa(sp.id) + ":" + strconv.FormatInt(sp.end, 10)
	}
	return s
}

// Next returns the next records, io.EOF once every partition reached its
// snapshot end.
func (t *topicReader) Next(ctx context.Context) ([]Record, error) {
	for t.cur < len(t.spans) {
		sp := &t.spans[t.cur]
		if sp.first >= sp.end {
			t.closeReader()
			t.cur++
			continue
		}
		if t.r == nil {
			t.r = kafkago.NewReader(kafkago.ReaderConfig{
				Brokers: t.conn.Brokers, Dialer: t.conn.Dialer(), Topic: t.topic, Partition: sp.id,
				MaxWait: time.Second, QueueCapacity: t.max,
				ErrorLogger: kafkago.LoggerFunc(func(msg string, args ...any) { t.log.Warn("kafka reader: " + fmt.Sprintf(msg, args...)) }),
			})
			if err := t.r.SetOffset(sp.first); err != nil {
				return nil, fmt.Errorf("read %s/%d from %d: %w", t.topic, sp.id, sp.first, err)
			}
		}
		out, err := t.fetch(ctx, sp)
		if len(out) > 0 || err != nil {
			return out, err
		}
	}
	return nil, io.EOF
}

// fetch takes up to max records of the current partition, stopping at its
// snapshot end.
func (t *topicReader) fetch(ctx context.Context, sp *partSpan) ([]Record, error) {
	var out []Record
	for len(out) < t.max && sp.first < sp.end {
		fctx := ctx
		var cancel context.CancelFunc = func() {}
		if len(out) > 0 {
			// Take what is buffered; do not wait long for more.
			fctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
		}
		m, err := t.r.FetchMessage(fctx)
		cancel()
		if err != nil {
			if len(out) > 0 && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return out, nil
			}
			return out, fmt.Errorf("read %s/%d at %d: %w", t.topic, sp.id, sp.first, err)
		}
		sp.first = m.Offset + 1
		if m.Offset >= sp.end {
			break // past the snapshot: a gap (compaction) hid the last offset
		}
		r := Record{From: t.topic + "/" + strconv.Itoa(sp.id) + "/" + strconv.FormatInt(m.Offset, 10), Key: m.Key, Value: m.Value, Time: m.Time}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
		}
		if dl, ok := legacyEnvelope(&r); ok {
			if lr, err := fromEnvelope(r.From, dl); err == nil {
				r = lr
			}
		}
		out = append(out, r)
	}
	if sp.first >= sp.end {
		t.closeReader()
		t.cur++
	}
	return out, nil
}

func (t *topicReader) closeReader() {
	if t.r != nil {
		_ = t.r.Close()
		t.r = nil
	}
}

func (t *topicReader) Close() error {
	t.closeReader()
	return nil
}

// topicWriter writes originals to a topic: keyed (murmur2, like every
// Kafka client), acked by all in-sync replicas.
type topicWriter struct {
	w *kafkago.Writer
}

func newTopicWriter(conn *kafkaconn.Conn, topic string) *topicWriter {
	return &topicWriter{w: &kafkago.Writer{
		Addr: kafkago.TCP(conn.Brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 500, BatchTimeout: 5 * time.Millisecond,
		BatchBytes: 16 << 20, MaxAttempts: 1, Transport: conn.Transport(), WriteTimeout: 10 * time.Second,
	}}
}

// Write writes recs, retrying a failure with backoff up to attempts times.
func (w *topicWriter) Write(ctx context.Context, recs []Record, attempts int) error {
	msgs := make([]kafkago.Message, len(recs))
	for i := range recs {
		r := &recs[i]
		m := kafkago.Message{Key: r.Key, Value: r.Value, Time: r.Time}
		for _, h := range r.OriginalHeaders() {
			m.Headers = append(m.Headers, kafkago.Header{Key: h.Key, Value: h.Value})
		}
		m.Headers = append(m.Headers, kafkago.Header{Key: "sluice.replayed_from", Value: []byte(r.From)})
		msgs[i] = m
	}
	wait := 200 * time.Millisecond
	var err error
	for try := 1; ; try++ {
		if err = w.w.WriteMessages(ctx, msgs...); err == nil {
			return nil
		}
		if try >= attempts || ctx.Err() != nil {
			return fmt.Errorf("write %d records to %s (attempt %d): %w", len(msgs), w.w.Topic, try, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

func (w *topicWriter) Close() error { return w.w.Close() }
