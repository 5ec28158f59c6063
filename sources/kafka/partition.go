package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/ackorder"
	"github.com/sluicehq/sluice/internal/handoff"
	"github.com/sluicehq/sluice/internal/kafkaconn"
	"github.com/sluicehq/sluice/pipeline"
)

// partition is one assigned partition in one generation.
type partition struct {
	topic         string
	id            int
	start         int64
	idPrefix      string                   // "topic/partition/", the prefix of event ids
	tracker       *ackorder.Tracker[int64] // positions are the next offset to read
	lag           prometheus.Gauge
	highWatermark atomic.Int64
	committed     atomic.Int64  // last committed offset; -1 none
	freed         chan struct{} // signaled when acks free capacity
	// stale reports whether the partition was revoked (its generation
	// ended): made once, for every batch's hand-over.
	stale func() bool
}

// consume fetches the partition in order and hands batches to Read until
// ctx ends (revocation or shutdown), then waits up to rebalance_drain for
// what it handed out to be acked.
func (s *Source) consume(ctx context.Context, p *partition) {
	p.stale = func() bool { return ctx.Err() != nil }
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:       s.conn.Brokers,
		Dialer:        s.conn.Dialer(),
		Topic:         p.topic,
		Partition:     p.id,
		MinBytes:      int(s.cfg.Fetch.MinBytes),
		MaxBytes:      int(s.cfg.Fetch.MaxBytes),
		MaxWait:       s.cfg.Fetch.MaxWait.D(),
		QueueCapacity: s.cfg.BatchSize,
		// A fetch timing out on a partition read to its end is the long
		// poll running out, not an error (see kafkaconn.ReaderErrorLogger).
		ErrorLogger: kafkaconn.ReaderErrorLogger(s.log.With("topic", p.topic, "partition", p.id), func(offset int64) bool {
			return offset >= p.highWatermark.Load()
		}),
	})
	defer func() {
		// Close can block for fetch.max_wait; it must not hold up the
		// generation's end, which waits for this function.
		go r.Close() //nolint:errcheck // nothing to do with a close error of a reader we abandon
	}()
	if err := r.SetOffset(p.start); err != nil {
		s.log.Error("kafka partition: set offset", "topic", p.topic, "partition", p.id, "offset", p.start, "err", err)
		<-ctx.Done()
		return
	}
	// The gathering window of every fetch is a child of this: a child of
	// kafka-go's generation context (not a context package type) would
	// cost a goroutine per fetch to watch its parent.
	gather, stopGather := context.WithCancel(ctx)
	defer stopGather()
	retry := pipeline.NewBackoff(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		if !s.waitForCapacity(ctx, p) {
			break
		}
		b := s.pool.get()
		err := s.fetch(ctx, gather, r, p, b, min(s.cfg.BatchSize, s.cfg.MaxInFlightPerPartition-p.tracker.InFlight()))
		if b.len() > 0 {
			retry.Reset()
			s.handOver(ctx, p, b)
		} else {
			s.pool.put(b)
		}
		if err != nil && ctx.Err() == nil {
			wait := retry.Next()
			s.log.Warn("kafka fetch failed, retrying", "topic", p.topic, "partition", p.id, "err", err, "in", wait)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	s.drain(p)
}

// waitForCapacity blocks while the partition has max_in_flight records
// out: the pipeline is behind, so fetching more would only grow memory.
func (s *Source) waitForCapacity(ctx context.Context, p *partition) bool {
	for p.tracker.InFlight() >= s.cfg.MaxInFlightPerPartition {
		select {
		case <-ctx.Done():
			return false
		case <-p.freed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

// fetcher is what fetch reads from: a *kafkago.Reader.
type fetcher interface {
	FetchMessage(ctx context.Context) (kafkago.Message, error)
}

// fetch adds up to limit records to b (batch_size, or less to stay within
// max_in_flight_per_partition): it waits for the first, then takes what
// arrives within a few milliseconds, mostly what the reader prefetched.
// The window is a child of gather, a child of ctx.
func (s *Source) fetch(ctx, gather context.Context, r fetcher, p *partition, b *batch, limit int) error {
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return err
	}
	b.add(p, &m)
	more, cancel := context.WithTimeout(gather, 2*time.Millisecond)
	defer cancel()
	for b.len() < limit {
		m, err := r.FetchMessage(more)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		b.add(p, &m)
	}
	return nil
}

// handOver queues b for Read; its ack settles the records' offsets and
// gives b back to the pool.
func (s *Source) handOver(ctx context.Context, p *partition, b *batch) {
	p.highWatermark.Store(b.hwm)
	committed := p.committed.Load()
	if committed < 0 {
		committed = b.first
	}
	p.lag.Set(float64(max(0, b.hwm-committed)))

	n := b.len()
	sp := p.tracker.Add(b.last+1, n)
	events := b.finish(p)
	ack := func(err error) {
		s.pool.put(b)
		p.tracker.Ack(sp, err)
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
	if !s.batches.Put(ctx, handoff.Batch{Events: events, Ack: ack, Stale: p.stale, StaleErr: ErrRevoked}) {
		ack(ErrRevoked)
	}
}

// drain waits for the records handed out to be acked, so the final commit
// covers them; after rebalance_drain it gives up and lets them be
// redelivered to the next owner.
func (s *Source) drain(p *partition) {
	deadline := time.NewTimer(s.cfg.RebalanceDrain.D())
	defer deadline.Stop()
	for p.tracker.InFlight() > 0 {
		select {
		case <-p.freed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			s.log.Info("kafka partition revoked with records in flight; they will be redelivered", "topic", p.topic, "partition", p.id, "records", p.tracker.InFlight())
			return
		}
	}
}

// newTracker starts at the group's committed offset, or with no position
// when the partition has none (earliest/latest decide where reading starts).
func newTracker(committed int64) *ackorder.Tracker[int64] {
	return ackorder.New(committed, committed >= 0)
}
