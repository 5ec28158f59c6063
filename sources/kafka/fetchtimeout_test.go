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

// logRecorder keeps every log record's level, text and attributes.
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
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.lines = append(r.lines, line)
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

// A fetch on a partition read to its end that the broker holds past
// fetch.max_wait (here: 1.5s against 1s, a busy broker) is still the long
// poll, not an error: the source's read deadline is max_wait plus 10s, so
// nothing is logged as a warning, no connection is dropped, and the source
// goes on reading. (With kafka-go's Reader the deadline was max_wait itself:
// such a fetch timed out and was reported as "an unknown error".)
func TestIdleFetchTimeoutIsNotAWarning(t *testing.T) {
	const topic = "idle.events"
	c := testenv.StartKafkaCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	brokers := c.ListenAddrs()
	produce(t, brokers, topic, 0, 10, 2)
	var caughtUp atomic.Bool
	var held, after atomic.Int32
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if caughtUp.Load() {
			if held.Add(1) <= 2 {
				c.SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
			} else {
				after.Add(1)
			}
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
	// Two fetches held past max_wait, then two more fetches: the held
	// ones were answered and the partition fetched on.
	testwait.For(t, "two held fetches and two after them", func() bool { return after.Load() >= 2 },
		func() string {
			return fmt.Sprintf("%d fetches held, %d after; logs: %q", held.Load(), after.Load(), logs.matching("", ""))
		})
	if warns := logs.matching("WARN", ""); len(warns) > 0 {
		t.Fatalf("a long poll held past max_wait logged warnings: %q", warns)
	}
	// Still reading: a record produced now arrives.
	produce(t, brokers, topic, 10, 1, 2)
	testwait.For(t, "a record produced after the held fetches", func() bool { return len(bodyIDs(sink)) == 11 }, nil)
}
