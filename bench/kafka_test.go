package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/generate"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	"github.com/sluicehq/sluice/transforms/decode"
)

// BenchmarkKafkaConsume reads b.N generated events (1.7 KB mean) from a
// 12-partition topic on the test stack's Kafka broker (make testenv) through
// kafka source → decode → a discarding sink. One op is one event; the
// figures are this process's alone (the broker is another process).
func BenchmarkKafkaConsume(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	topic := fmt.Sprintf("bench.kafka.%d", time.Now().UnixNano())
	ctx := context.Background()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	if _, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 12, ReplicationFactor: 1}}}); err != nil {
		b.Fatal(err)
	}
	deleteTopicAfter(b, c, topic)
	fillTopic(b, brokers, topic, b.N)

	sink := &discard{}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	decode.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(`name: kafka-bench
source: {kafka: {brokers: [%q], topic: %s, group: %s}}
transforms: [{decode: {format: json, id: id, time: occurred_at}}]
sinks: [{discard: {}}]
`, strings.Join(brokers, ","), topic, topic)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	p := pipelinetest.Build(b, "bench.yaml", doc, reg)
	driveToSink(b, runCtx, stop, p, sink)
}

// fillTopic writes n generated events to topic, outside the timed part.
func fillTopic(b *testing.B, brokers []string, topic string, n int) {
	b.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	gen := generate.NewGenerator(generate.Workload{Seed: 7}, time.Now)
	var ev pipeline.Event
	msgs := make([]kafkago.Message, 0, 5000)
	var buf []byte
	for i := 0; i < n; i++ {
		buf = gen.Next(&ev, buf[:0])
		msgs = append(msgs, kafkago.Message{Key: append([]byte(nil), ev.Key...), Value: append([]byte(nil), ev.Payload...)})
		if len(msgs) == cap(msgs) || i == n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
}

// BenchmarkKafkaConsumeDiscard is BenchmarkKafkaConsume without the decode
// step: the kafka source → a discarding sink, through the runner. It is
// the sluice side of the comparison with BenchmarkKafkaRaw.
func BenchmarkKafkaConsumeDiscard(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	topic := kafkaBenchTopic(b, brokers)
	sink := &discard{}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(`name: kafka-bench
source: {kafka: {brokers: [%q], topic: %s, group: %s}}
sinks: [{discard: {}}]
`, strings.Join(brokers, ","), topic, topic)
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	p := pipelinetest.Build(b, "bench.yaml", doc, reg)
	driveToSink(b, runCtx, stop, p, sink)
}

// BenchmarkKafkaRaw reads the same kind of topic as BenchmarkKafkaConsume
// with bare kafka-go: one kafkago.Reader per partition (the 12 the source
// reads), with the kafka source's default fetch settings (min_bytes 1,
// max_bytes 4 MiB, max_wait 1s, a queue of batch_size 500), every message
// fetched and dropped. No group, no commits, no events: the floor the
// kafka source is measured against (its CPU-s per million as a share of
// this one's is its efficiency).
func BenchmarkKafkaRaw(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	topic := kafkaBenchTopic(b, brokers)
	measureRaw(b, func(ctx context.Context, part int, got *atomic.Int64) {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: part,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: time.Second, QueueCapacity: 500,
		})
		defer r.Close()
		for {
			if _, err := r.FetchMessage(ctx); err != nil {
				if ctx.Err() == nil {
					b.Errorf("partition %d: %v", part, err) // ends measureRaw's wait
				}
				return
			}
			got.Add(1)
		}
	})
}

// BenchmarkKafkaRawBatch reads the same kind of topic with kafka-go's
// lower-level API, the one the kafka source uses since it stopped using a
// Reader: per partition one connection to the leader and one fetch at a
// time (Conn.ReadBatchWith with the source's default fetch settings), every
// record read with Batch.ReadMessage and dropped. No group, no commits, no
// events: the floor for a consumer built on kafka-go's Conn, as
// BenchmarkKafkaRaw is the floor for one built on its Reader.
func BenchmarkKafkaRawBatch(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	topic := kafkaBenchTopic(b, brokers)
	measureRaw(b, func(ctx context.Context, part int, got *atomic.Int64) {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, part)
		if err != nil {
			b.Error(err)
			return
		}
		// No read deadline: the broker answers every fetch within MaxWait,
		// and the end of the run closes the connection.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		defer conn.Close()
		for {
			batch := conn.ReadBatchWith(kafkago.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: time.Second})
			for {
				if _, err := batch.ReadMessage(); err != nil {
					break
				}
				got.Add(1)
			}
			err := batch.Close()
			switch {
			case err == nil, errors.Is(err, kafkago.RequestTimedOut):
				// read to its end, or an empty long poll: fetch again
			case ctx.Err() != nil:
				return
			default:
				b.Errorf("partition %d: %v", part, err) // ends measureRaw's wait
				return
			}
		}
	})
}

// measureRaw times reading b.N records with read running for each of the
// kafkaBenchPartitions partitions until ctx ends, counting into got, and
// reports allocs/event, events/s and cpu-s/Mevents as driveToSink does.
func measureRaw(b *testing.B, read func(ctx context.Context, part int, got *atomic.Int64)) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var got atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	runtime.GC() // the fill's garbage is not the run's (as in driveToSink)
	b.ResetTimer()
	stopProfile := timedCPUProfile(b)
	allocs := countAllocs()
	cpuBefore := processCPU()
	for part := range kafkaBenchPartitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read(ctx, part, &got)
		}()
	}
	for got.Load() < int64(b.N) && !b.Failed() {
		time.Sleep(time.Millisecond) // the same polling as driveToSink
	}
	cpu := processCPU() - cpuBefore
	mallocs := allocs()
	stopProfile()
	b.StopTimer()
	stop()
	wg.Wait()
	b.ReportMetric(float64(mallocs)/float64(b.N), "allocs/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/Mevents")
}

const kafkaBenchPartitions = 12

// kafkaBenchTopic creates a fresh topic of kafkaBenchPartitions
// partitions holding b.N generated events.
func kafkaBenchTopic(b *testing.B, brokers []string) string {
	b.Helper()
	topic := fmt.Sprintf("bench.kafka.%d", time.Now().UnixNano())
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	if _, err := c.CreateTopics(context.Background(), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: kafkaBenchPartitions, ReplicationFactor: 1}}}); err != nil {
		b.Fatal(err)
	}
	deleteTopicAfter(b, c, topic)
	fillTopic(b, brokers, topic, b.N)
	return topic
}

// deleteTopicAfter deletes topic when the benchmark ends: a run leaves
// b.N × ~1.7 KB on the broker's disk otherwise, for the broker's whole
// retention (a few dozen runs of 300,000 events filled the shared test
// stack's disk and stopped its broker on 2026-12-03).
func deleteTopicAfter(b *testing.B, c *kafkago.Client, topic string) {
	b.Cleanup(func() {
		resp, err := c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			b.Errorf("delete benchmark topic %s: %v", topic, err)
		}
	})
}
