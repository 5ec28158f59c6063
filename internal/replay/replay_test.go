package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/sluicehq/sluice/internal/testwait"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/replay"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
	"github.com/sluicehq/sluice/transforms/decode"
	"github.com/sluicehq/sluice/transforms/filter"
)

func registry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	kafkasource.Register(r)
	decode.Register(r)
	filter.Register(r)
	filesinks.Register(r)
	kafkasink.Register(r)
	return r
}

func createTopics(t *testing.T, brokers []string, parts int, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	var cfgs []kafkago.TopicConfig
	for _, tp := range topics {
		cfgs = append(cfgs, kafkago.TopicConfig{Topic: tp, NumPartitions: parts, ReplicationFactor: 1})
	}
	resp, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: cfgs})
	if err != nil {
		t.Fatal(err)
	}
	for tp, err := range resp.Errors {
		if err != nil {
			t.Fatalf("create %s: %v", tp, err)
		}
	}
}

type record struct {
	key, value []byte
	trace      string
}

// input is what the producer sends: 10 good events, 3 whose amount the
// broken filter cannot compare (fine for the fixed pipeline) and 2 that
// are not JSON at all (poison for both).
func input() []record {
	var out []record
	for i := range 10 {
		out = append(out, record{key: fmt.Appendf(nil, "k%d", i%4), value: fmt.Appendf(nil, `{"id":"g%d","amount":%d}`, i, i+1), trace: fmt.Sprint("t-g", i)})
	}
	for i := range 3 {
		out = append(out, record{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, `{"id":"b%d","amount":"lots"}`, i), trace: fmt.Sprint("t-b", i)})
	}
	for i := range 2 {
		out = append(out, record{key: fmt.Appendf(nil, "k%d", i), value: fmt.Appendf(nil, "not json \xff%d", i), trace: fmt.Sprint("t-p", i)})
	}
	return out
}

func produce(t *testing.T, brokers []string, topic string, recs []record) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	msgs := make([]kafkago.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafkago.Message{Key: r.key, Value: r.value, Headers: []kafkago.Header{{Key: "trace", Value: []byte(r.trace)}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// readTopic reads every record of topic up to its current end.
func readTopic(t *testing.T, brokers []string, topic string) []kafkago.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	var out []kafkago.Message
	for _, p := range md.Topics[0].Partitions {
		conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		_ = conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last == 0 {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: time.Second})
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset+1 >= last {
				break
			}
		}
		_ = r.Close()
	}
	return out
}

func header(m kafkago.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func load(t *testing.T, reg *pipeline.Registry, doc string) *pipeline.Config {
	t.Helper()
	cfg, err := pipeline.Load("test.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runUntil runs cfg until done reports true of its stats, then stops it.
func runUntil(t *testing.T, cfg *pipeline.Config, reg *pipeline.Registry, done func(pipeline.Stats) bool) pipeline.Stats {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	var ended error
	testwait.For(t, "pipeline progress to the expected state", func() bool {
		select {
		case err := <-errc:
			ended = err
			return true
		default:
			return done(p.Stats())
		}
	}, func() string { return fmt.Sprintf("stats %+v", p.Stats()) })
	if !done(p.Stats()) {
		t.Fatalf("pipeline ended early: %v (stats %+v)", ended, p.Stats())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return p.Stats()
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out
}

// TestPoisonRoundTripsThroughReplay: poison goes to the dead-letter topic
// as the original record with its reason in headers; `replay` reads the
// topic up to the snapshot taken at its start and takes each original
// through the fixed pipeline, where what fails again is dead-lettered again
// (after the snapshot: the replay does not read it back and ends).
func TestPoisonRoundTripsThroughReplay(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	id := fmt.Sprintf("replay-%d", time.Now().UnixNano())
	src, dead, target := id+".events", id+".dead", id+".target"
	createTopics(t, brokers, 3, src, dead, target)
	in := input()
	produce(t, brokers, src, in)
	dir := t.TempDir()
	bs := strings.Join(brokers, ",")
	deadSink := fmt.Sprintf("dead_letter: {kafka: {brokers: [%q], topic: %s}}\n", bs, dead)

	// The broken pipeline: its filter cannot compare a string amount.
	reg := registry()
	broken := load(t, reg, fmt.Sprintf(`name: broken
source: {kafka: {brokers: [%q], topic: %s, group: %s-g}}
transforms:
  - decode: {format: json}
  - filter: {keep: "amount > 0"}
sinks: [{file: {path: %s}}]
batch: {max_wait: 10ms}
`, bs, src, id, filepath.Join(dir, "broken.jsonl"))+deadSink)
	st := runUntil(t, broken, reg, func(s pipeline.Stats) bool { return s.Written+s.DeadLettered >= int64(len(in)) })
	if st.Written != 10 || st.DeadLettered != 5 {
		t.Fatalf("broken pipeline: %+v, want 10 written and 5 dead-lettered", st)
	}

	// The dead letters are the original records, the failure in headers.
	byValue := map[string]record{}
	for _, r := range in {
		byValue[string(r.value)] = r
	}
	dls := readTopic(t, brokers, dead)
	if len(dls) != 5 {
		t.Fatalf("%d dead letters, want 5", len(dls))
	}
	for _, m := range dls {
		orig, ok := byValue[string(m.Value)]
		if !ok {
			t.Fatalf("dead letter value %q is not an original payload", m.Value)
		}
		if !bytes.Equal(m.Key, orig.key) {
			t.Errorf("dead letter key %q, want %q", m.Key, orig.key)
		}
		if v, _ := header(m, "trace"); v != orig.trace {
			t.Errorf("dead letter of %q: trace header %q, want %q", m.Value, v, orig.trace)
		}
		for _, h := range []string{"sluice.id", "sluice.dead_letter.reason", "sluice.dead_letter.component", "sluice.dead_letter.attempts", "sluice.dead_letter.failed_at", "sluice.dead_letter.source"} {
			if v, ok := header(m, h); !ok || v == "" {
				t.Errorf("dead letter of %q has no %s header", m.Value, h)
			}
		}
		if v, _ := header(m, "sluice.dead_letter.source"); !strings.Contains(v, "kafka.topic="+src) {
			t.Errorf("dead letter source %q does not name %s", v, src)
		}
	}

	// A dry run counts per reason and writes nothing.
	dry, err := replay.Run(context.Background(), replay.Options{Brokers: brokers, FromTopic: dead, DryRun: true, Filter: `component == "transforms[1].filter"`})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Read != 5 || dry.Matched != 3 || dry.Skipped != 2 || dry.Replayed != 0 || len(dry.ByReason) == 0 {
		t.Fatalf("dry run summary %+v", dry)
	}
	var table bytes.Buffer
	replay.WriteSummary(&table, dry, true)
	if !strings.Contains(table.String(), "transforms[1].filter") || !strings.Contains(table.String(), "3 would be replayed") {
		t.Errorf("dry-run table:\n%s", table.String())
	}

	// The fixed pipeline: no filter; the non-JSON payloads fail again.
	reg = registry()
	out := filepath.Join(dir, "fixed.jsonl")
	fixed := load(t, reg, fmt.Sprintf(`name: fixed
source: {kafka: {brokers: [%q], topic: %s, group: %s-unused}}
transforms:
  - decode: {format: json}
sinks: [{file: {path: %s, format: payload}}]
batch: {max_wait: 10ms}
`, bs, src, id, out)+deadSink)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound()) // hang-catcher
	defer cancel()
	sum, err := replay.Run(ctx, replay.Options{Brokers: brokers, FromTopic: dead, Pipeline: fixed, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != 5 || sum.Replayed != 5 || sum.Pipeline == nil || sum.Pipeline.Written != 3 || sum.Pipeline.DeadLettered != 2 {
		t.Fatalf("replay summary %+v (pipeline %+v), want 5 read and replayed, 3 written, 2 dead-lettered again", sum, sum.Pipeline)
	}
	stored := lines(t, out)
	if len(stored) != 3 {
		t.Fatalf("fixed pipeline stored %d lines, want 3", len(stored))
	}
	for _, l := range stored {
		if r, ok := byValue[string(l)]; !ok || !strings.Contains(r.trace, "t-b") {
			t.Errorf("stored %q, want an original string-amount payload byte for byte", l)
		}
	}
	// The two that failed again are new dead letters, after the snapshot,
	// marked as replayed.
	again := readTopic(t, brokers, dead)
	if len(again) != 7 {
		t.Fatalf("%d dead letters after the replay, want 7", len(again))
	}
	replayed := 0
	for _, m := range again {
		if from, ok := header(m, "sluice.replayed_from"); ok {
			replayed++
			if !strings.HasPrefix(from, dead+"/") || !strings.HasPrefix(string(m.Value), "not json") {
				t.Errorf("re-dead-lettered %q replayed_from %q", m.Value, from)
			}
			if c, _ := header(m, "sluice.dead_letter.component"); c != "transforms[0].decode" {
				t.Errorf("re-dead-lettered component %q", c)
			}
		}
	}
	if replayed != 2 {
		t.Errorf("%d dead letters carry sluice.replayed_from, want 2", replayed)
	}

	// To a topic: the originals with their headers and replayed_from only.
	sum, err = replay.Run(ctx, replay.Options{Brokers: brokers, FromTopic: dead, ToTopic: target, Filter: `"sluice.replayed_from" in headers`})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Read != 7 || sum.Replayed != 2 {
		t.Fatalf("to-topic summary %+v, want 7 read, 2 replayed", sum)
	}
	targetRecs := readTopic(t, brokers, target)
	if len(targetRecs) != 2 {
		t.Fatalf("%d records in the target topic, want 2", len(targetRecs))
	}
	for _, m := range targetRecs {
		orig, ok := byValue[string(m.Value)]
		if !ok || !bytes.Equal(m.Key, orig.key) {
			t.Errorf("target record %q key %q is not an original", m.Value, m.Key)
		}
		for _, h := range m.Headers {
			if strings.HasPrefix(h.Key, "sluice.dead_letter.") || h.Key == "sluice.id" {
				t.Errorf("target record carries %s", h.Key)
			}
		}
		if v, _ := header(m, "trace"); v != orig.trace {
			t.Errorf("target record trace %q, want %q", v, orig.trace)
		}
	}
}
