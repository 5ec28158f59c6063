package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// logRecorder keeps every log record's level and text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, rec.Level.String()+" "+rec.Message)
	return nil
}

func (r *logRecorder) matching(level, text string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.lines {
		if (level == "" || strings.HasPrefix(l, level+" ")) && strings.Contains(l, text) {
			out = append(out, l)
		}
	}
	return out
}

// A fetch on a partition read to its end that the broker answers after
// kafka-go's read deadline (here: held 1.5s, past fetch.max_wait 1s) is the
// long poll running out, not an unknown error: logged at debug, and the
// source goes on reading.
func TestIdleFetchTimeoutIsNotAWarning(t *testing.T) {
	const topic = "idle.events"
	c := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	brokers := c.ListenAddrs()
	produce(t, brokers, topic, 0, 10, 2)
	var caughtUp atomic.Bool
	var held atomic.Int32
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if caughtUp.Load() && held.Add(1) <= 2 {
			c.SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
		}
		return nil, nil, false // then the broker answers as usual
	})
	logs := &logRecorder{}
	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf("name: idle\nsource: {kafka: {brokers: [%q], topic: %s, group: idle, fetch: {max_wait: 1s}}}\nsinks: [{mem: {index: 0}}]\n", brokers[0], topic)
	run := pipelinetest.Start(t, "idle.yaml", doc, reg, pipeline.WithLogger(slog.New(logs)))
	defer func() {
		if err := run.Stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.For(t, "the 10 records", func() bool { return len(bodyIDs(sink)) == 10 }, nil)
	caughtUp.Store(true)
	// Whichever way it is logged, a held fetch times out on the client.
	testwait.For(t, "a fetch past its read deadline on the idle partition", func() bool {
		return len(logs.matching("DEBUG", "long poll outlived the read deadline"))+len(logs.matching("WARN", "i/o timeout")) > 0
	}, func() string { return fmt.Sprintf("%d fetches held; logs: %q", held.Load(), logs.matching("", "")) })
	if warns := logs.matching("WARN", "i/o timeout"); len(warns) > 0 {
		t.Fatalf("an idle fetch's timeout logged as a warning: %q", warns)
	}
	// Still reading: a record produced now arrives.
	produce(t, brokers, topic, 10, 1, 2)
	testwait.For(t, "a record produced after the timeouts", func() bool { return len(bodyIDs(sink)) == 11 }, nil)
}
