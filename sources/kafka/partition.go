package kafka

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/ackorder"
	"github.com/sluicehq/sluice/internal/handoff"
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

// consume reads the partition in order (fetch.go) and hands batches to
// Read until ctx ends (revocation or shutdown), then waits up to
// rebalance_drain for what it handed out to be acked.
func (s *Source) consume(ctx context.Context, p *partition) {
	p.stale = func() bool { return ctx.Err() != nil }
	f := &fetcher{s: s, p: p, offset: p.start}
	defer f.close()
	retry := pipeline.NewBackoff(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		if !s.waitForCapacity(ctx, p) {
			break
		}
		err := f.fetchOnce(ctx)
		if err == nil {
			retry.Reset()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		wait := retry.Next()
		s.metrics.fetchErrors.WithLabelValues(p.topic).Inc()
		s.log.Warn("kafka fetch failed, retrying", "topic", p.topic, "partition", p.id, "offset", f.offset, "err", err, "in", wait)
		_ = pipeline.Sleep(ctx, wait) // ends early only when ctx does, which the loop checks
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
	gen := b.handed.Add(1)
	ack := func(err error) {
		if !b.handed.CompareAndSwap(gen, gen+1) {
			return // acked already: b may be another hand-over's by now
		}
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
