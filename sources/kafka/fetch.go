package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// How a partition is read.
//
// Each assigned partition has one connection to its leader (kafka-go's
// Conn) and fetches on it one response at a time (kafka-go's Batch): the
// records of a response go straight into sluice batches of up to
// batch_size, handed to Read as they fill. There is no kafka-go Reader in
// between: a Reader runs a goroutine per partition that passes every record
// through a channel and resets the connection's read deadline for every
// record; without it (and with readbuf.go's buffer) the source costs a
// third less CPU per record (bench/RESULTS.md, "sixth round").
//
// Prefetch is the hand-off queue: while the pipeline works on a batch the
// partition goes on reading the response, and fetches the next one, until
// the queue is full or max_in_flight_per_partition records are out. Waiting
// for either in the middle of a response leaves the rest of it in the
// socket; the read deadline is renewed when reading resumes.
//
// A fetch error closes the connection; the partition dials its leader
// again, with backoff, and checks its offset against the log's range: an
// offset before the log's start (retention deleted it) skips to the start,
// one past the end that the leader refused to fetch at is reset as `start`
// says (Kafka's auto.offset.reset), both with a warning. An idle long poll
// (kafka-go's RequestTimedOut for an empty response read to its end) keeps
// the connection and fetches again at once.

// readTimeout is how long a fetch may take beyond fetch.max_wait, and how
// long reading the rest of a response may stall, before the connection is
// given up and dialed again (kafka-go's Reader: ReadBatchTimeout, 10s).
const readTimeout = 10 * time.Second

// messageReader is what the records of one fetch response are read from:
// a *kafkago.Batch. ReadMessage returns io.EOF at the response's end.
type messageReader interface {
	ReadMessage() (kafkago.Message, error)
}

// fetcher reads one partition from its leader.
type fetcher struct {
	s    *Source
	p    *partition
	conn *kafkago.Conn
	// unwatch stops closing conn when the partition's context ends (which
	// is how a fetch blocked on the broker returns on revocation).
	unwatch func() bool
	// offset is the next offset to read; kafkago.FirstOffset or
	// kafkago.LastOffset until a connection resolved it.
	offset int64
	// outOfRange is set when the broker refused a fetch at offset as out
	// of the log's range: only then is an offset past the log's end reset.
	outOfRange bool
}

// fetchOnce reads one fetch response into batches handed to Read,
// connecting first if need be. An error it returns is to be logged and
// retried with backoff; what needs no retry it handles itself.
func (f *fetcher) fetchOnce(ctx context.Context) error {
	if f.conn == nil {
		if err := f.connect(ctx); err != nil {
			return err
		}
	}
	conn := f.conn
	if _, err := conn.Seek(f.offset, kafkago.SeekAbsolute|kafkago.SeekDontCheck); err != nil {
		return f.broken(fmt.Errorf("seek to offset %d: %w", f.offset, err))
	}
	maxWait := f.s.cfg.Fetch.MaxWait.D()
	_ = conn.SetReadDeadline(time.Now().Add(maxWait + readTimeout)) // kafka-go's SetReadDeadline never fails
	resp := conn.ReadBatchWith(kafkago.ReadBatchConfig{
		MinBytes: int(f.s.cfg.Fetch.MinBytes),
		MaxBytes: int(f.s.cfg.Fetch.MaxBytes),
		MaxWait:  maxWait,
	})
	// A response whose header was read is consumed to its end by kafka-go
	// whatever its records do; one that failed before may be half read.
	headerRead := resp.Err() == nil
	next, readErr := f.s.drainFetch(ctx, f.p, resp, f.offset, func() {
		_ = conn.SetReadDeadline(time.Now().Add(readTimeout))
	})
	err := resp.Close() // the response's error, nil at its end
	// At a response's end kafka-go moves past the last offset of a record
	// batch whose last records the log cleaner removed; fetching after the
	// last record read instead would get that batch again, with nothing in
	// it to read. Every record it moved over was read, so handed over.
	f.offset = max(next, resp.Offset())
	if readErr != nil {
		err = readErr // the same error, or ctx's
	}
	return f.handle(ctx, err, headerRead)
}

// handle sorts a fetch's error: nil for what needs no retry, the error
// otherwise. Every error but an idle long poll closes the connection: after
// a fetch the broker refused, kafka-go's Conn may have left the rest of the
// response unread (the next request on it then fails), so the next fetch
// dials the leader again and resolves the offset against the log's range
// (connect). kafka-go reports RequestTimedOut for a response read to its
// end that held no record (the partition is read to its end: fetch.max_wait
// passed) or that was read past its deadline; the connection is then
// sound and the next fetch uses it at once, as kafka-go's Reader does. A
// broker's REQUEST_TIMED_OUT for the partition is an error like the others.
func (f *fetcher) handle(ctx context.Context, err error, headerRead bool) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // revoked or closing: the closed connection's error is not news
	case errors.Is(err, kafkago.RequestTimedOut) && headerRead:
		return nil // an idle long poll: fetch again
	default:
		// A lost leader, an offset out of the log's range, a refusal
		// (e.g. not authorized), the broker's own timeout, a network error.
		f.outOfRange = errors.Is(err, kafkago.OffsetOutOfRange)
		return f.broken(fmt.Errorf("fetch at offset %d: %w", f.offset, err))
	}
}

// connect dials the partition's leader through the first broker that
// answers and moves offset into the log's range as Kafka's
// auto.offset.reset does: an offset before the log's start (retention
// deleted records before they were read: logged, they are gone) moves to
// the start; one past the end (the topic was deleted and made again, or
// its log truncated) moves to the start or the end, as `start` says — once
// the leader refused to fetch at it. The end read here is the leader's high
// watermark, which a leader just elected may report below records already
// read for a moment; that is no reason to read the partition again.
func (f *fetcher) connect(ctx context.Context) error {
	var err error
	for _, broker := range f.s.conn.Brokers {
		var conn *kafkago.Conn
		conn, err = f.s.fetchDialer.DialLeader(ctx, "tcp", broker, f.p.topic, f.p.id)
		if err != nil {
			continue
		}
		f.conn = conn
		f.unwatch = context.AfterFunc(ctx, func() { conn.Close() })
		var first, last int64
		if first, last, err = f.logRange(); err != nil {
			f.close()
			continue
		}
		f.resolve(first, last)
		f.outOfRange = false
		return nil
	}
	return fmt.Errorf("connecting to the leader of partition %d of %s: %w", f.p.id, f.p.topic, err)
}

// resolve moves offset into [first, last] (connect).
func (f *fetcher) resolve(first, last int64) {
	log := f.s.log.With("topic", f.p.topic, "partition", f.p.id, "offset", f.offset, "log_start", first, "log_end", last)
	switch {
	case f.offset == kafkago.FirstOffset:
		f.offset = first
	case f.offset == kafkago.LastOffset:
		f.offset = last
	case f.offset < first:
		log.Warn("kafka partition: records were deleted by retention before they were read; reading from the log's start", "skipped", first-f.offset)
		f.offset = first
	case f.offset > last && f.outOfRange:
		to := first
		if f.s.cfg.Start == "latest" {
			to = last
		}
		log.Warn("kafka partition: the offset is past the log's end (the topic was made again or its log truncated); resetting as `start` says", "start", f.s.cfg.Start, "to", to)
		f.offset = to
	}
}

// logRange reads the first and next-to-write offsets of the partition.
func (f *fetcher) logRange() (first, last int64, err error) {
	_ = f.conn.SetDeadline(time.Now().Add(readTimeout))
	first, last, err = f.conn.ReadOffsets()
	_ = f.conn.SetDeadline(time.Time{})
	return first, last, err
}

// broken closes the connection (the next fetch dials the leader again)
// and returns err.
func (f *fetcher) broken(err error) error {
	f.close()
	return err
}

// close closes the connection, if any.
func (f *fetcher) close() {
	if f.conn == nil {
		return
	}
	f.unwatch()
	f.conn.Close() //nolint:errcheck // nothing to do with a close error of a connection we give up
	f.conn, f.unwatch = nil, nil
}

// drainFetch hands the records of one fetch response over in batches of up
// to batch_size (fewer to stay within max_in_flight_per_partition), and
// returns the offset after the last record read, from next. Between
// batches it waits for room (the hand-off queue, max_in_flight), then calls
// resume before it reads on. It returns at the response's end (nil), or
// with r's error, or when ctx ends.
func (s *Source) drainFetch(ctx context.Context, p *partition, r messageReader, next int64, resume func()) (int64, error) {
	for {
		b := s.pool.get()
		end, err := s.fill(p, r, b, s.limit(p))
		if b.len() == 0 {
			s.pool.put(b)
		} else {
			next = b.last + 1
			s.handOver(ctx, p, b)
		}
		if end || err != nil {
			return next, err
		}
		if !s.waitForCapacity(ctx, p) {
			return next, ctx.Err()
		}
		resume()
	}
}

// limit is how many records the partition's next batch may hold.
func (s *Source) limit(p *partition) int {
	return max(1, min(s.cfg.BatchSize, s.cfg.MaxInFlightPerPartition-p.tracker.InFlight()))
}

// fill adds records from r to b until b holds limit (end false) or the
// response ends (end true, err nil) or fails (err).
func (s *Source) fill(p *partition, r messageReader, b *batch, limit int) (end bool, err error) {
	for b.len() < limit {
		m, err := r.ReadMessage()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return true, err
		}
		b.add(p, &m)
	}
	return false, nil
}
