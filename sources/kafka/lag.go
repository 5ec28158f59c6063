package kafka

import (
	"context"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// lagLoop reads the end offsets of the generation's partitions from the
// brokers every lag_interval and sets sluice_kafka_consumer_lag from them.
// It is independent of fetching, which stops while the pipeline is behind
// (a store down fills max_in_flight): the gauge must grow exactly then.
func (s *Source) lagLoop(ctx context.Context, parts []*partition) {
	byTopic := map[string][]*partition{}
	for _, p := range parts {
		byTopic[p.topic] = append(byTopic[p.topic], p)
	}
	client := s.conn.Client()
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	tick := time.NewTicker(s.cfg.LagInterval.D())
	defer tick.Stop()
	for {
		for topic, ps := range byTopic {
			s.pollLag(ctx, client, topic, ps)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Source) pollLag(ctx context.Context, client *kafkago.Client, topic string, ps []*partition) {
	rctx, cancel := context.WithTimeout(ctx, max(s.cfg.LagInterval.D(), 5*time.Second))
	defer cancel()
	ids := make([]int, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	offsets, err := s.conn.Offsets(rctx, client, topic, ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("kafka lag: reading end offsets failed; the lag gauge keeps its last value", "topic", topic, "err", err)
			// The brokers do not answer this member: /readyz says so
			// until they do (the group session may not have noticed yet).
			err = fmt.Errorf("brokers not answering (end offsets of %s): %w", topic, err)
			s.brokers.Set(err)
		}
		return
	}
	s.brokers.Set(nil)
	for _, p := range ps {
		span := offsets[p.id]
		p.highWatermark.Store(span.End)
		from := p.committed.Load()
		if from < 0 {
			// Nothing committed yet: everything from where reading
			// starts is behind.
			from = span.First
			if s.cfg.Start == "latest" {
				continue
			}
		}
		p.lag.Set(float64(max(0, span.End-from)))
	}
}
