package kafka_test

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// TestFetchErrorsAreCountedAndRetried: fetches the leader refuses
// (NOT_LEADER_OR_FOLLOWER, three times) are counted in
// sluice_kafka_fetch_errors_total, logged as warnings, and retried: every
// record arrives once.
func TestFetchErrorsAreCountedAndRetried(t *testing.T) {
	const topic, failures = "flaky.events", 3
	c := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	brokers := c.ListenAddrs()
	ids := produce(t, brokers, topic, 0, 50, 5)
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if refused.Add(1) > failures {
			return nil, nil, false // the broker answers as usual from now on
		}
		c.KeepControl()
		return testenv.KfakeFetchAnswer(kreq, func(rp *kmsg.FetchResponseTopicPartition) {
			rp.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
		}), nil, true
	})
	logs := &logRecorder{}
	metrics := prometheus.NewRegistry()
	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf("name: flaky\nsource: {kafka: {brokers: [%q], topic: %s, group: flaky}}\nsinks: [{mem: {index: 0}}]\n", brokers[0], topic)
	run := pipelinetest.Start(t, "flaky.yaml", doc, reg, pipeline.WithLogger(slog.New(logs)), pipeline.WithMetricsRegisterer(metrics))
	defer func() {
		if err := run.Stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.For(t, "every record", func() bool { return len(bodyIDs(sink)) == len(ids) },
		func() string { return fmt.Sprintf("%d read, %d fetches refused", len(bodyIDs(sink)), refused.Load()) })
	for id, n := range bodyIDs(sink) {
		if n != 1 {
			t.Errorf("record %s read %d times", id, n)
		}
	}
	if got := pipelinetest.MetricSum(t, metrics, "sluice_kafka_fetch_errors_total", map[string]string{"topic": topic}); got != failures {
		t.Errorf("sluice_kafka_fetch_errors_total{topic=%q} = %v, want %d", topic, got, failures)
	}
	if warns := logs.matching("WARN", "kafka fetch failed, retrying"); len(warns) != failures {
		t.Errorf("%d fetch warnings, want %d: %q", len(warns), failures, warns)
	}
}
