package kafkaconn

import (
	"context"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
)

// Span is a partition's offsets: the first still stored and the end (the
// offset the next record will get, the high watermark).
type Span struct {
	First, End int64
}

// Partitions lists the partition ids of topic, in order.
func (c *Conn) Partitions(ctx context.Context, client *kafka.Client, topic string) ([]int, error) {
	resp, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("topic %s: %w", topic, t.Error)
		}
		ids := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ids = append(ids, p.ID)
		}
		sort.Ints(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("topic %s: not in the brokers' metadata", topic)
}

// Offsets asks the brokers for the first and end offsets of partitions of
// topic (all of them when partitions is nil), independent of any reader.
func (c *Conn) Offsets(ctx context.Context, client *kafka.Client, topic string, partitions []int) (map[int]Span, error) {
	if partitions == nil {
		var err error
		if partitions, err = c.Partitions(ctx, client, topic); err != nil {
			return nil, err
		}
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(partitions))
	for _, p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	out := make(map[int]Span, len(partitions))
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = Span{First: po.FirstOffset, End: po.LastOffset}
	}
	for _, p := range partitions {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("list offsets of %s: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}

// Client is an admin client on the brokers with a transport of its own.
func (c *Conn) Client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: c.Transport()}
}
