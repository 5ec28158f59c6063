package bench

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	filesink "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/generate"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	"github.com/sluicehq/sluice/transforms/decode"
)

// misbehaving wraps the file sink under its own name, so the audit reads
// its file back, but drops or repeats some events while reporting success.
type misbehaving struct {
	pipeline.Sink
	every  int64
	repeat bool
	n      atomic.Int64 // lanes write concurrently
}

func (m *misbehaving) Write(ctx context.Context, batch []*pipeline.Event) error {
	var out []*pipeline.Event
	for _, ev := range batch {
		switch n := m.n.Add(1); {
		case n%m.every != 0:
			out = append(out, ev)
		case m.repeat:
			out = append(out, ev, ev)
		}
	}
	return m.Sink.Write(ctx, out)
}

func registry(wrap func(pipeline.Sink) pipeline.Sink) func() *pipeline.Registry {
	return func() *pipeline.Registry {
		r := pipeline.NewRegistry()
		generate.Register(r)
		decode.Register(r)
		kafkasource.Register(r)
		kafkasink.Register(r)
		pipeline.RegisterSink(r, "file", "file, possibly misbehaving", func(bc pipeline.BuildContext, c *filesink.Config) (pipeline.Sink, error) {
			s, err := filesink.New(bc, *c)
			if err != nil || wrap == nil || !strings.HasSuffix(c.Path, "events.jsonl") {
				return s, err
			}
			return wrap(s), nil
		})
		return r
	}
}

// fileConsumer writes the stream to a JSON-lines file: the audit reads the
// file back, so a misbehaving file sink shows in it.
const fileConsumer = `name: bench-file-consumer
source:
  kafka: {brokers: ["${SLUICE_KAFKA_BROKERS}"], topic: "${BENCH_TOPIC}", group: "${BENCH_GROUP}"}
transforms:
  - decode: {format: json, id: id, time: occurred_at}
sinks:
  - file: {path: "${BENCH_OUT}/events.jsonl", fsync: false}
dead_letter:
  file: {path: "${BENCH_OUT}/dead-letter.jsonl"}
batch: {max_events: 500, max_wait: 50ms}
`

func TestAuditCatchesLossAndDuplication(t *testing.T) {
	brokers := strings.Join(testenv.StartKafka(t, kfake.NumBrokers(3)), ",")
	for _, tc := range []struct {
		name             string
		wrap             func(pipeline.Sink) pipeline.Sink
		lost, duplicated bool
	}{
		{"faithful sink", nil, false, false},
		{"sink that drops every 97th event", func(s pipeline.Sink) pipeline.Sink { return &misbehaving{Sink: s, every: 97} }, true, false},
		{"sink that writes every 89th event twice", func(s pipeline.Sink) pipeline.Sink { return &misbehaving{Sink: s, every: 89, repeat: true} }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			profile, err := NewProfile("max", 0, 3000)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), Options{
				Profile: profile, Registry: registry(tc.wrap), Brokers: brokers, OutDir: t.TempDir(),
				ConsumerConfig: []byte(fileConsumer), ConsumerFile: "file-consumer.yaml",
				Duplicates: 0.02, Poison: 0.01, Seed: 5,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.DrainedBy != "kafka committed offsets" {
				t.Fatalf("the run ended on %q, want the group's committed offsets", res.DrainedBy)
			}
			a := res.Audit
			if a.Sent != 3000 || a.Unique >= 3000 || a.Poison == 0 {
				t.Fatalf("audit %+v: want 3000 sent with some duplicates and poison", a)
			}
			if (a.Lost > 0) != tc.lost || (a.Duplicated > 0) != tc.duplicated {
				t.Fatalf("%s", a.Line())
			}
			if !tc.lost && a.DeadLettered != a.Poison {
				t.Fatalf("dead-lettered %d of %d poison events", a.DeadLettered, a.Poison)
			}
			if res.Settled < 3000 || len(res.Series) == 0 && res.Seconds > 1.5 {
				t.Fatalf("settled %d, series %d", res.Settled, len(res.Series))
			}
		})
	}
}
