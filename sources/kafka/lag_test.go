package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// TestLagGrowsWhileReadingIsHeldBack: with the pipeline stopped (nothing
// read from the source is acked, so fetching stops at
// max_in_flight_per_partition), the lag gauge still follows what the
// producers add, from the brokers' end offsets.
func TestLagGrowsWhileReadingIsHeldBack(t *testing.T) {
	topic := "lag-held-back"
	brokers := cluster(t, topic)
	reg := prometheus.NewRegistry()
	var c kafkasource.Config
	c.SetDefaults()
	c.Brokers, c.Topic, c.Group = brokers, topic, "lag-test"
	c.MaxInFlightPerPartition, c.BatchSize = 5, 5
	c.LagInterval = pipeline.Duration(100 * time.Millisecond)
	// Kafka's usual group timeouts: a loaded machine must not rebalance the
	// group by accident (kfake refuses sessions under 6 s anyway).
	c.SessionTimeout, c.HeartbeatInterval = pipeline.Duration(30*time.Second), pipeline.Duration(time.Second)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := kafkasource.New(pipeline.NewBuildContext("test", "test", nil, reg), c)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.StartSource(t, src)
	produce(t, brokers, topic, 0, 120, 24)
	// Take one batch and never ack it: the sink is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound()) // hang-catcher only
	defer cancel()
	if _, _, err := src.Read(ctx); err != nil {
		t.Fatal(err)
	}
	waitLag := func(want float64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("the lag gauge to sum to %v", want), func() bool { return pipelinetest.MetricSum(t, reg, "sluice_kafka_consumer_lag", nil) == want },
			func() string {
				return fmt.Sprintf("lag gauge sums to %v", pipelinetest.MetricSum(t, reg, "sluice_kafka_consumer_lag", nil))
			})
	}
	waitLag(120)
	produce(t, brokers, topic, 120, 600, 24)
	waitLag(720)
}

// TestNotReadyWhenTheBrokersStopAnswering: a member whose brokers are gone
// reports it on Ready from the periodic end-offset read, before any group
// session timeout would.
func TestNotReadyWhenTheBrokersStopAnswering(t *testing.T) {
	topic := "ready-brokers-gone"
	cl := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, topic), kfake.GroupMinSessionTimeout(200*time.Millisecond))
	brokers := cl.ListenAddrs()
	var c kafkasource.Config
	c.SetDefaults()
	c.Brokers, c.Topic, c.Group = brokers, topic, "ready-test"
	c.LagInterval = pipeline.Duration(100 * time.Millisecond)
	c.SessionTimeout, c.HeartbeatInterval = pipeline.Duration(30*time.Second), pipeline.Duration(time.Second)
	src, err := kafkasource.New(pipeline.NewBuildContext("test", "test", nil, prometheus.NewRegistry()), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = src.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound()) // hang-catcher
	defer cancel()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("waiting for %s; Ready = %v", what, src.Ready())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	wait("the member to be ready", func() bool { return src.Ready() == nil })
	cl.Close()
	wait("the member to report its brokers gone", func() bool {
		err := src.Ready()
		return err != nil && strings.Contains(err.Error(), "brokers not answering")
	})
}
