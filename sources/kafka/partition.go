package kafka

import (
	"context"
	"errors"
	"strconv"
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
}

// consume fetches the partition in order and hands batches to Read until
// ctx ends (revocation or shutdown), then waits up to rebalance_drain for
// what it handed out to be acked.
func (s *Source) consume(ctx context.Context, p *partition) {
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
	retry := pipeline.NewBackoff(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		if !s.waitForCapacity(ctx, p) {
			break
		}
		msgs, err := s.fetch(ctx, r, min(s.cfg.BatchSize, s.cfg.MaxInFlightPerPartition-p.tracker.InFlight()))
		if len(msgs) > 0 {
			retry.Reset()
			s.handOver(ctx, p, msgs)
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

// fetch returns up to limit records (batch_size, or less to stay within
// max_in_flight_per_partition): it waits for the first, then takes what
// arrives within a few milliseconds, mostly what the reader prefetched.
func (s *Source) fetch(ctx context.Context, r *kafkago.Reader, limit int) ([]kafkago.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]kafkago.Message, 1, limit)
	msgs[0] = first
	more, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
	defer cancel()
	for len(msgs) < limit {
		m, err := r.FetchMessage(more)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return msgs, nil
			}
			return msgs, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func (s *Source) handOver(ctx context.Context, p *partition, msgs []kafkago.Message) {
	last := msgs[len(msgs)-1]
	p.highWatermark.Store(last.HighWaterMark)
	committed := p.committed.Load()
	if committed < 0 {
		committed = msgs[0].Offset
	}
	p.lag.Set(float64(max(0, last.HighWaterMark-committed)))

	events := toEvents(p, msgs)
	sp := p.tracker.Add(last.Offset+1, len(msgs))
	ack := func(err error) {
		p.tracker.Ack(sp, err)
		select {
		case p.freed <- struct{}{}:
		default:
		}
	}
	if !s.batches.Put(ctx, handoff.Batch{Events: events, Ack: ack, Stale: func() bool { return ctx.Err() != nil }, StaleErr: ErrRevoked}) {
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

// toEvents converts records to events, allocating the events, their
// metadata and their ids in one slab each (ids are substrings of one
// string made for the batch).
func toEvents(p *partition, msgs []kafkago.Message) []*pipeline.Event {
	evs := make([]pipeline.Event, len(msgs))
	out := make([]*pipeline.Event, len(msgs))
	const fixed = 3
	meta := make([]pipeline.MetaPair, 0, len(msgs)*fixed)
	partitionStr := p.idPrefix[len(p.topic)+1 : len(p.idPrefix)-1]
	idText := make([]byte, 0, len(msgs)*(len(p.idPrefix)+8))
	idEnds := make([]int, len(msgs))
	for i := range msgs {
		idText = append(idText, p.idPrefix...)
		idText = strconv.AppendInt(idText, msgs[i].Offset, 10)
		idEnds[i] = len(idText)
	}
	ids := string(idText)
	start := 0
	for i := range msgs {
		m := &msgs[i]
		ev := &evs[i]
		ev.ID = ids[start:idEnds[i]]
		start = idEnds[i]
		ev.Key = m.Key
		ev.Payload = m.Value
		ev.Time = m.Time
		mstart := len(meta)
		meta = append(meta,
			pipeline.MetaPair{Key: MetaTopic, Value: p.topic},
			pipeline.MetaPair{Key: MetaPartition, Value: partitionStr},
			pipeline.MetaPair{Key: MetaOffset, Value: ev.ID[len(p.idPrefix):]},
		)
		ev.Meta = meta[mstart:len(meta):len(meta)]
		for _, h := range m.Headers {
			ev.Meta = append(ev.Meta, pipeline.MetaPair{Key: MetaHeaderPrefix + h.Key, Value: string(h.Value)})
		}
		out[i] = ev
	}
	return out
}
