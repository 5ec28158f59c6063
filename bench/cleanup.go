package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/pipeline"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// Cleanup is what a run deleted after it ended, what it kept (Options.Keep,
// or a store whose name is not the run's own) and what it failed to
// delete. Each entry names the thing ("topic bench.peak.x", "collection
// bench.events_bench-x"); a failure adds the error.
type Cleanup struct {
	Deleted []string `json:"deleted,omitempty"`
	Kept    []string `json:"kept,omitempty"`
	Failed  []string `json:"failed,omitempty"`
}

// Line is the report's cleanup line.
func (c *Cleanup) Line() string {
	if c == nil {
		return "cleanup: nothing to clean"
	}
	var parts []string
	if len(c.Deleted) > 0 {
		parts = append(parts, "deleted "+strings.Join(c.Deleted, ", "))
	}
	if len(c.Kept) > 0 {
		parts = append(parts, "kept "+strings.Join(c.Kept, ", "))
	}
	if len(c.Failed) > 0 {
		parts = append(parts, "FAILED to delete "+strings.Join(c.Failed, "; "))
	}
	if len(parts) == 0 {
		return "cleanup: nothing to clean"
	}
	return "cleanup: " + strings.Join(parts, "; ")
}

// cleaner collects what a run creates, as it creates it, and deletes it
// when the run ends: the Kafka topic and consumer group, or the Kinesis
// stream and the group's leases, and the stores the audit read (through
// pipeline.Cleaner), only those whose names hold the run's stamp.
type cleaner struct {
	stamp string
	keep  bool
	log   *slog.Logger

	brokers      []string // where the topic was made
	topic        string   // set once the run made it
	groupBrokers []string // the consumer's brokers
	group        string   // the kafka source's group

	kinesisEndpoint, stream string                // set once the run made the stream
	leases                  *kinesissource.Config // the kinesis source, for its checkpoint store

	stores []pipeline.StoreAudit
}

func newCleaner(o Options, stamp string) *cleaner {
	return &cleaner{stamp: stamp, keep: o.Keep, log: o.Logger}
}

// consumer notes what the consumer config adds: the group's brokers, the
// Kinesis source's leases.
func (c *cleaner) consumer(o Options, cfg *pipeline.Config) {
	if k, ok := cfg.Source.Spec.Config.(*kinesissource.Config); ok {
		c.leases = k
		return
	}
	if cfg.Source.Spec.Name == "kafka" {
		c.group, c.groupBrokers = configField(cfg.Source.Spec.Config, "group"), sourceBrokers(o, cfg)
	}
}

// auditor notes the stores the audit opened.
func (c *cleaner) auditor(a *auditor) {
	if a == nil {
		return
	}
	c.stores = append(c.stores, a.stores...)
	if a.dead != nil {
		c.stores = append(c.stores, a.dead)
	}
}

// run deletes (or, with keep, lists) everything noted. It runs at the end
// of the run whatever the outcome, also after ctx was cancelled (Ctrl-C):
// it works on ctx's values without its cancellation, within a bound.
// Errors are logged with the names they concern and listed as Failed.
func (c *cleaner) run(ctx context.Context) *Cleanup {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancel()
	rep := &Cleanup{}
	do := func(name string, del func() (bool, error)) {
		if c.keep {
			rep.Kept = append(rep.Kept, name+" (--keep)")
			return
		}
		switch done, err := del(); {
		case err != nil:
			c.log.Warn("bench cleanup failed", "what", name, "err", err)
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", name, err))
		case done:
			rep.Deleted = append(rep.Deleted, name)
		default:
			rep.Kept = append(rep.Kept, name+" (not this run's: its name lacks the run's stamp "+c.stamp+")")
		}
	}
	for _, s := range c.stores {
		if cl, ok := s.(pipeline.Cleaner); ok {
			do(cl.Target(), func() (bool, error) { return cl.Drop(ctx, c.stamp) })
		}
	}
	if c.group != "" {
		do("consumer group "+c.group, func() (bool, error) {
			if !strings.Contains(c.group, c.stamp) {
				return false, nil
			}
			return true, deleteGroup(ctx, c.groupBrokers, c.group)
		})
	}
	if c.topic != "" {
		do("topic "+c.topic, func() (bool, error) { return true, deleteTopic(ctx, c.brokers, c.topic) })
	}
	if c.leases != nil && c.leases.Checkpoint.MongoDB != nil {
		c.cleanLeases(ctx, do)
	}
	if c.stream != "" {
		do("kinesis stream "+c.stream, func() (bool, error) { return true, deleteStream(ctx, c.kinesisEndpoint, c.stream) })
	}
	if len(rep.Deleted)+len(rep.Kept)+len(rep.Failed) == 0 {
		return nil
	}
	return rep
}

// cleanLeases deletes the Kinesis group's leases: the whole collection
// when its name holds the stamp, else the group's documents in it when the
// group or the stream is the run's.
func (c *cleaner) cleanLeases(ctx context.Context, do func(string, func() (bool, error))) {
	k := c.leases
	leases, err := kinesissource.OpenMongoLeases(*k.Checkpoint.MongoDB, k.ConsumerGroup, k.Stream)
	if err != nil {
		do("kinesis leases", func() (bool, error) { return false, err })
		return
	}
	defer leases.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing a client after the work is done
	if strings.Contains(leases.Collection(), c.stamp) {
		do("lease collection "+leases.Collection(), func() (bool, error) { return true, leases.DropCollection(ctx) })
		return
	}
	name := fmt.Sprintf("leases of group %s on %s in %s", k.ConsumerGroup, k.Stream, leases.Collection())
	do(name, func() (bool, error) {
		if !strings.Contains(k.ConsumerGroup, c.stamp) && !strings.Contains(k.Stream, c.stamp) {
			return false, nil
		}
		_, err := leases.Delete(ctx)
		return err == nil, err
	})
}

// deleteGroup deletes the consumer group. A group with members left (a
// killed consumer's session has not expired yet) cannot be deleted: it
// retries until they are gone, within ctx. A group that is not there is
// no error.
func deleteGroup(ctx context.Context, brokers []string, group string) error {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	bound := time.Now().Add(time.Minute)
	for {
		resp, err := client.DeleteGroups(ctx, &kafkago.DeleteGroupsRequest{GroupIDs: []string{group}})
		if err == nil {
			err = resp.Errors[group]
		}
		switch {
		case err == nil, errors.Is(err, kafkago.GroupIdNotFound):
			return nil
		case !errors.Is(err, kafkago.NonEmptyGroup) && !errors.Is(err, kafkago.GroupLoadInProgress):
			return err
		case time.Now().After(bound):
			return fmt.Errorf("still has members after a minute: %w", err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-tick.C:
		}
	}
}

// deleteTopic deletes the topic; one that is not there is no error.
func deleteTopic(ctx context.Context, brokers []string, topic string) error {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := client.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafkago.UnknownTopicOrPartition) {
		return err
	}
	return nil
}

// deleteStream deletes the Kinesis stream; one that is not there is no
// error.
func deleteStream(ctx context.Context, endpoint, stream string) error {
	client, err := awskinesis.Client(ctx, "us-east-1", endpoint, staticCredentials())
	if err != nil {
		return err
	}
	_, err = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream), EnforceConsumerDeletion: aws.Bool(true)})
	var missing *kinesistypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return err
	}
	return nil
}

// finish runs the cleanup and puts its report on the result; without a
// result (the run failed before it had one) it prints the report to
// Progress.
func (c *cleaner) finish(ctx context.Context, o Options, res *Result) *Result {
	rep := c.run(ctx)
	if res != nil {
		res.Stamp, res.Cleanup = c.stamp, rep
	} else if rep != nil {
		fmt.Fprintln(o.Progress, rep.Line())
	}
	return res
}
