package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/pipeline"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
)

// streamProgress is where the consumer group stands on the stream, read
// from the stream's own positions: Kafka's committed and end offsets, or
// Kinesis checkpoints against the records the tail read.
type streamProgress struct {
	Committed, Lag int64
	Drained        bool
	Where          string
}

// voidRun is a stream state no audit can judge (a topic that lost records
// mid-run): the run ends with it.
type voidRun struct{ msg string }

func (v *voidRun) Error() string { return v.msg }

// chaosStream is the stream a chaos run drives: how its progress is read,
// and for Kinesis the tail that also splits shards and checks the order.
type chaosStream struct {
	drainedBy string
	progress  func(context.Context) (streamProgress, error)
	tail      *kinesisTail // --stream kinesis only
	close     func()
}

// chaosVars are the ${BENCH_*} and stream variables of the run's pipelines.
func chaosVars(o ChaosOptions, stamp string) map[string]string {
	topic, group := "bench.chaos."+stamp, "bench-chaos-"+stamp
	if o.Stream == "kinesis" {
		topic = "bench-chaos-" + stamp
	}
	return map[string]string{"SLUICE_KAFKA_BROKERS": o.Brokers, "SLUICE_KINESIS_ENDPOINT": o.KinesisEndpoint,
		"BENCH_TOPIC": topic, "BENCH_GROUP": group, "BENCH_OUT": "", "BENCH_METRICS": "127.0.0.1:0"}
}

// checkChaosSource refuses a consumer the chaos profile cannot follow.
func checkChaosSource(o ChaosOptions, name string, cfg *pipeline.Config) error {
	switch o.Stream {
	case "kinesis":
		if _, ok := cfg.Source.Spec.Config.(*kinesissource.Config); !ok {
			return fmt.Errorf("%s: --stream kinesis needs a kinesis source (stream ${BENCH_TOPIC}, consumer_group ${BENCH_GROUP}), not %s", name, cfg.Source.Spec.Name)
		}
	default:
		if cfg.Source.Spec.Name != "kafka" || configField(cfg.Source.Spec.Config, "group") == "" {
			return fmt.Errorf("%s: the chaos profile needs a kafka source with a group (topic ${BENCH_TOPIC}, group ${BENCH_GROUP})", name)
		}
	}
	return nil
}

// openChaosStream creates the run's topic or stream and the reader of the
// group's progress on it.
// The cleaner notes what it made.
func openChaosStream(ctx context.Context, o ChaosOptions, cfg *pipeline.Config, brokers int, cl *cleaner) (*chaosStream, error) {
	if c, ok := cfg.Source.Spec.Config.(*kinesissource.Config); ok {
		endpoint := o.KinesisEndpoint
		if c.Endpoint != "" {
			endpoint = c.Endpoint
		}
		if err := createStream(ctx, endpoint, c.Stream, 4); err != nil {
			return nil, err
		}
		cl.kinesisEndpoint, cl.stream = endpoint, c.Stream
		tail, err := newKinesisTail(ctx, o.KinesisEndpoint, c)
		if err != nil {
			return nil, err
		}
		return &chaosStream{drainedBy: "kinesis checkpoints (every shard, closed parents included, at its end)", tail: tail, close: tail.close,
			progress: func(ctx context.Context) (streamProgress, error) {
				ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				return tail.progress(ctx)
			}}, nil
	}
	read, err := groupReader(o.Options, cfg)
	if err != nil {
		return nil, err
	}
	topic := configField(cfg.Source.Spec.Config, "topic")
	if err := createTopicReplicated(ctx, o.Brokers, topic, 12, brokers); err != nil {
		return nil, err
	}
	cl.brokers, cl.topic = strings.Split(o.Brokers, ","), topic
	ends := map[int]int64{} // the highest end offset seen per partition
	return &chaosStream{drainedBy: "kafka committed offsets", close: func() {},
		progress: func(ctx context.Context) (streamProgress, error) {
			pr, err := read(ctx)
			if err != nil {
				return streamProgress{}, err
			}
			if lost := topicLost(ends, pr); lost != "" {
				return streamProgress{}, &voidRun{fmt.Sprintf("the topic lost records mid-run (%s): the broker restarted without its data, or the topic was recreated; the run is void", lost)}
			}
			return streamProgress{Committed: pr.Committed(), Lag: pr.Lag(), Drained: pr.Drained(), Where: pr.String()}, nil
		}}, nil
}

// groupReader reads the consumer group's committed and end offsets.
func groupReader(o Options, cfg *pipeline.Config) (func(context.Context) (kafkagroup.Progress, error), error) {
	group, topic := configField(cfg.Source.Spec.Config, "group"), configField(cfg.Source.Spec.Config, "topic")
	if topic == "" {
		return nil, errors.New("the consumer's kafka source names no topic")
	}
	client := kafkagroup.NewClient(sourceBrokers(o, cfg), nil)
	return func(ctx context.Context) (kafkagroup.Progress, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return kafkagroup.Read(ctx, client, group, topic)
	}, nil
}

// sourceBrokers are the kafka source's brokers, else Options.Brokers.
func sourceBrokers(o Options, cfg *pipeline.Config) []string {
	var addrs []string
	for _, b := range configStrings(cfg.Source.Spec.Config, "brokers") {
		addrs = append(addrs, strings.Split(b, ",")...)
	}
	if len(addrs) == 0 {
		addrs = strings.Split(o.Brokers, ",")
	}
	return addrs
}

// clusterBrokers counts the brokers of the Kafka cluster.
func clusterBrokers(ctx context.Context, addrs []string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(addrs...), Timeout: 10 * time.Second}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		return 0, fmt.Errorf("kafka cluster metadata: %w", err)
	}
	return len(md.Brokers), nil
}

// createTopicReplicated creates the topic with replication min(brokers, 3)
// and, at 3, min.insync.replicas 2: one broker may die without losing an
// acknowledged record (the producer writes with acks=all).
func createTopicReplicated(ctx context.Context, brokers, topic string, partitions, clusterSize int) error {
	rf := min(max(clusterSize, 1), 3)
	tc := kafkago.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: rf}
	if rf == 3 {
		tc.ConfigEntries = []kafkago.ConfigEntry{{ConfigName: "min.insync.replicas", ConfigValue: "2"}}
	}
	c := &kafkago.Client{Addr: kafkago.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{tc}})
	if err != nil {
		return fmt.Errorf("create bench topic: %w", err)
	}
	if err := resp.Errors[topic]; err != nil {
		return fmt.Errorf("create bench topic: %w", err)
	}
	return nil
}
