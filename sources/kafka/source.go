// Package kafka is the Kafka source: a consumer group member that reads
// each assigned partition in order and commits, per partition, only the
// offset below which every record is acked.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/handoff"
	"github.com/sluicehq/sluice/internal/kafkaconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Meta keys the source sets on every event.
const (
	MetaTopic        = "kafka.topic"
	MetaPartition    = "kafka.partition"
	MetaOffset       = "kafka.offset"
	MetaHeaderPrefix = "kafka.header."
)

// ErrRevoked acks records whose partition was revoked before the pipeline
// took them: they were never processed, and the new owner reads them.
var ErrRevoked = errors.New("partition revoked before the records were processed")

// Register adds the kafka source to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSource(r, "kafka", "a Kafka consumer group member with contiguous per-partition commits", func(bc pipeline.BuildContext, c *Config) (pipeline.Source, error) {
		return New(bc, *c)
	})
}

// Source is a consumer group member.
type Source struct {
	cfg  Config
	conn *kafkaconn.Conn
	// fetchDialer dials the partitions' fetch connections (readbuf.go).
	fetchDialer *kafkago.Dialer
	log         *slog.Logger
	metrics     *metrics

	batches *handoff.Queue
	pool    *pool // acked batches for reuse (batch.go)
	group   *kafkago.ConsumerGroup
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	ready   pipeline.Readiness
	brokers pipeline.Readiness // the last lag poll's failure
}

// New builds a source; nothing connects until Start.
func New(bc pipeline.BuildContext, c Config) (*Source, error) {
	log, reg := bc.Logger, bc.Metrics
	conn, err := kafkaconn.New(c.Brokers, c.TLS, c.SASL)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	if conn.PlainWithoutTLS {
		log.Warn(kafkaconn.PlainWithoutTLSWarning)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: c, conn: conn, fetchDialer: fetchDialer(conn.Dialer()), log: log, metrics: m, batches: handoff.New(4), pool: &pool{size: c.BatchSize}}
	notYet := errors.New("not yet a member of group " + c.Group)
	s.ready.Set(notYet)
	return s, nil
}

// Start joins the group in the background. Unreachable brokers are not an
// error here: joining is retried with backoff and /readyz reports it.
func (s *Source) Start(context.Context) error {
	start := kafkago.FirstOffset
	if s.cfg.Start == "latest" {
		start = kafkago.LastOffset
	}
	group, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                s.cfg.Group,
		Brokers:           s.conn.Brokers,
		Dialer:            s.conn.Dialer(),
		Topics:            s.cfg.topics(),
		StartOffset:       start,
		SessionTimeout:    s.cfg.SessionTimeout.D(),
		HeartbeatInterval: s.cfg.HeartbeatInterval.D(),
		RebalanceTimeout:  s.cfg.RebalanceTimeout.D(),
		JoinGroupBackoff:  time.Second,
		// Partitions added to a topic trigger a rebalance that picks them up.
		WatchPartitionChanges: true,
		ErrorLogger:           kafkago.LoggerFunc(func(msg string, args ...any) { s.log.Warn("kafka group: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("kafka source group %s: %w", s.cfg.Group, err)
	}
	s.group = group
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run()
	}()
	return nil
}

// run takes one generation after another until the source closes.
func (s *Source) run() {
	for {
		gen, err := s.group.Next(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			err = fmt.Errorf("joining group %s: %w", s.cfg.Group, err)
			s.ready.Set(err)
			s.log.Warn("kafka source not in its group, retrying", "err", err)
			continue
		}
		s.ready.Set(nil)
		s.metrics.rebalances.Inc()
		s.startGeneration(gen)
	}
}

// startGeneration starts a fetcher per assigned partition and the
// committer. kafka-go ends the generation on a rebalance by canceling their
// contexts, and joins the next one only after all of them returned.
func (s *Source) startGeneration(gen *kafkago.Generation) {
	var parts []*partition
	for topic, assigned := range gen.Assignments {
		for _, pa := range assigned {
			p := &partition{
				topic: topic, id: pa.ID, start: pa.Offset,
				tracker:  newTracker(pa.Offset),
				lag:      s.metrics.lag.WithLabelValues(topic, strconv.Itoa(pa.ID)),
				freed:    make(chan struct{}, 1),
				idPrefix: topic + "/" + strconv.Itoa(pa.ID) + "/",
			}
			p.committed.Store(max(-1, pa.Offset))
			parts = append(parts, p)
		}
	}
	s.metrics.assigned.Set(float64(len(parts)))
	s.log.Info("kafka partitions assigned", "group", s.cfg.Group, "generation", gen.ID, "partitions", len(parts))
	var drained sync.WaitGroup
	for _, p := range parts {
		drained.Add(1)
		gen.Start(func(ctx context.Context) {
			defer drained.Done()
			s.consume(ctx, p)
		})
	}
	gen.Start(func(ctx context.Context) {
		s.commitLoop(ctx, gen, parts, &drained)
	})
	gen.Start(func(ctx context.Context) {
		s.lagLoop(ctx, parts)
	})
}

// commitLoop commits every partition's watermark on commit_interval, and a
// last time once the generation ends and its partitions have drained. All
// commits of a generation go through here, one request at a time.
func (s *Source) commitLoop(ctx context.Context, gen *kafkago.Generation, parts []*partition, drained *sync.WaitGroup) {
	tick := time.NewTicker(s.cfg.CommitInterval.D())
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.commit(gen, parts)
		case <-ctx.Done():
			drained.Wait()
			s.commit(gen, parts)
			for _, p := range parts {
				s.metrics.lag.DeleteLabelValues(p.topic, strconv.Itoa(p.id))
			}
			return
		}
	}
}

func (s *Source) commit(gen *kafkago.Generation, parts []*partition) {
	offsets := map[string]map[int]int64{}
	tokens := map[*partition]uint64{}
	for _, p := range parts {
		if off, token, ok := p.tracker.ToCommit(); ok {
			if offsets[p.topic] == nil {
				offsets[p.topic] = map[int]int64{}
			}
			offsets[p.topic][p.id] = off
			tokens[p] = token
		}
	}
	if len(offsets) == 0 {
		return
	}
	began := time.Now()
	err := gen.CommitOffsets(offsets)
	s.log.Debug("kafka commit", "generation", gen.ID, "partitions", len(offsets), "took", time.Since(began), "err", err)
	if err != nil {
		s.metrics.commits.WithLabelValues("error").Inc()
		s.log.Warn("kafka commit failed; acked offsets will be committed on the next try", "group", s.cfg.Group, "generation", gen.ID, "err", err)
		return
	}
	s.metrics.commits.WithLabelValues("ok").Inc()
	for _, p := range parts {
		if token, ok := tokens[p]; ok {
			off := offsets[p.topic][p.id]
			p.tracker.Committed(token)
			p.committed.Store(off)
			if hwm := p.highWatermark.Load(); hwm > 0 {
				p.lag.Set(float64(max(0, hwm-off)))
			}
		}
	}
}

// Read returns the next batch of one partition's records. A batch whose
// partition moved to another member while it waited is acked ErrRevoked
// and left to the new owner.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	return s.batches.Read(ctx)
}

// Ready reports whether the source is a member of its group and its
// brokers answer (the periodic end-offset read).
func (s *Source) Ready() error {
	if err := s.ready.Ready(); err != nil {
		return err
	}
	if err := s.brokers.Ready(); err != nil {
		return err
	}
	return nil
}

// Close leaves the group after committing what was acked.
func (s *Source) Close(ctx context.Context) error {
	if s.group == nil {
		return nil
	}
	s.cancel()
	// Batches queued but never read: ack them now, so the partitions'
	// drain does not wait rebalance_drain for acks that cannot come.
	s.batches.Close(pipeline.ErrAbandoned)
	done := make(chan error, 1)
	go func() {
		err := s.group.Close()
		s.wg.Wait()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka source: leave group %s: %w", s.cfg.Group, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka source: leaving group %s: %w", s.cfg.Group, ctx.Err())
	}
}
