// Package kafkagroup reads a consumer group's progress from the brokers:
// per partition, the offset the group committed against the topic's end
// offset. A group is drained when every committed offset has reached its
// end: everything written so far was settled (stored, dropped on purpose
// or dead-lettered) and will not be read again. The bench harness, the
// demo and tests use it instead of counting events read, which
// redeliveries after a rebalance inflate.
package kafkagroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Partition is one partition's position.
type Partition struct {
	ID int
	// Committed is the group's committed offset (the next to read), -1
	// when it committed none.
	Committed int64
	// End is the partition's end offset (its high watermark).
	End int64
}

// Lag is how many records of the partition are not committed.
func (p Partition) Lag() int64 { return p.End - max(0, p.Committed) }

// Progress is a group's position on one topic.
type Progress struct {
	Group, Topic string
	Partitions   []Partition // by ID
}

// Drained reports whether the group committed every partition to its end.
func (p Progress) Drained() bool {
	if len(p.Partitions) == 0 {
		return false
	}
	for _, pt := range p.Partitions {
		if pt.Lag() > 0 {
			return false
		}
	}
	return true
}

// Lag is the records not committed, over all partitions.
func (p Progress) Lag() int64 {
	var n int64
	for _, pt := range p.Partitions {
		n += max(0, pt.Lag())
	}
	return n
}

// Committed is the sum of the committed offsets: the records the group
// will not read again.
func (p Progress) Committed() int64 {
	var n int64
	for _, pt := range p.Partitions {
		n += max(0, pt.Committed)
	}
	return n
}

// String is one line: "group g on t: lag 12; p0 40/40, p1 -/12, …".
func (p Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group %s on %s: lag %d;", p.Group, p.Topic, p.Lag())
	for _, pt := range p.Partitions {
		c := "-"
		if pt.Committed >= 0 {
			c = fmt.Sprint(pt.Committed)
		}
		fmt.Fprintf(&b, " p%d %s/%d", pt.ID, c, pt.End)
	}
	return b.String()
}

// Client is what Read needs; *kafkago.Client is one.
type Client interface {
	Metadata(ctx context.Context, req *kafkago.MetadataRequest) (*kafkago.MetadataResponse, error)
	ListOffsets(ctx context.Context, req *kafkago.ListOffsetsRequest) (*kafkago.ListOffsetsResponse, error)
	OffsetFetch(ctx context.Context, req *kafkago.OffsetFetchRequest) (*kafkago.OffsetFetchResponse, error)
}

// NewClient is a kafka-go admin client for brokers with a per-request
// timeout.
func NewClient(brokers []string, transport *kafkago.Transport) *kafkago.Client {
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	if transport != nil {
		c.Transport = transport
	}
	return c
}

// Read asks the brokers for the topic's partitions, their end offsets and
// the group's committed offsets.
func Read(ctx context.Context, c Client, group, topic string) (Progress, error) {
	p := Progress{Group: group, Topic: topic}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return p, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var ids []int
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return p, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		for _, pt := range t.Partitions {
			ids = append(ids, pt.ID)
		}
	}
	if len(ids) == 0 {
		return p, fmt.Errorf("topic %s has no partitions", topic)
	}
	slices.Sort(ids)
	reqs := make([]kafkago.OffsetRequest, len(ids))
	for i, id := range ids {
		reqs[i] = kafkago.LastOffsetOf(id)
	}
	lo, err := c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return p, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	end := map[int]int64{}
	for _, po := range lo.Topics[topic] {
		if po.Error != nil {
			return p, fmt.Errorf("end offset of %s/%d: %w", topic, po.Partition, po.Error)
		}
		end[po.Partition] = po.LastOffset
	}
	of, err := c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return p, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	// A group that never committed is unknown to some brokers (kfake)
	// and has no offsets on others (Kafka): the same thing.
	if of.Error != nil && !errors.Is(of.Error, kafkago.GroupIdNotFound) {
		return p, fmt.Errorf("committed offsets of group %s: %w", group, of.Error)
	}
	committed := map[int]int64{}
	for _, op := range of.Topics[topic] {
		if op.Error != nil {
			return p, fmt.Errorf("committed offset of group %s on %s/%d: %w", group, topic, op.Partition, op.Error)
		}
		committed[op.Partition] = op.CommittedOffset
	}
	var errs []error
	for _, id := range ids {
		e, ok := end[id]
		if !ok {
			errs = append(errs, fmt.Errorf("no end offset for %s/%d", topic, id))
		}
		c, ok := committed[id]
		if !ok {
			c = -1
		}
		p.Partitions = append(p.Partitions, Partition{ID: id, Committed: c, End: e})
	}
	return p, errors.Join(errs...)
}
