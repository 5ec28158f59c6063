package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
)

// reloadTopic creates a topic of its own on the shared Kafka.
func reloadTopic(t *testing.T, brokers []string, partitions int) string {
	t.Helper()
	topic := "sluice-reload-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	resp, err := c.CreateTopics(context.Background(), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})
	return topic
}

func reloadProduce(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	msgs := make([]kafkago.Message, 0, n)
	for i := from; i < from+n; i++ {
		b, _ := json.Marshal(map[string]any{"id": "r" + strconv.Itoa(i), "key": "k" + strconv.Itoa(i%37), "seq": i})
		msgs = append(msgs, kafkago.Message{Key: []byte("k" + strconv.Itoa(i%37)), Value: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Errorf("produce: %v", err)
	}
}

// fileIDs counts each id in a JSON-lines file.
func fileIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return ids
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ids[gjson.GetBytes(sc.Bytes(), "id").String()]++
	}
	return ids
}

var summaryLine = regexp.MustCompile(`(\d+) events read in .*: (\d+) written, (\d+) dropped, (\d+) dead-lettered, (\d+) abandoned unacked`)

// TestReloadWithKafkaSource reloads a Kafka-fed pipeline (a transform
// added) while records are being produced and read: every record is stored,
// the old generation's summary adds up, a record is stored twice only if
// the old generation gave it up uncommitted (abandoned), and the group's
// commits reach the end offsets. One scenario, read top to bottom: longer
// than 80 lines on purpose.
func TestReloadWithKafkaSource(t *testing.T) {
	const total, partitions = 6000, 4
	brokers := testenv.KafkaBrokers(t)
	topic := reloadTopic(t, brokers, partitions)
	group := topic + "-g"
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	write := func(gen int, transform string) {
		t.Helper()
		doc := fmt.Sprintf(`name: reload-kafka
source:
  kafka:
    brokers: [%q]
    topic: %s
    group: %s
    start: earliest
    commit_interval: 100ms
    batch_size: 50
    max_in_flight_per_partition: 200
transforms:
  - decode: {format: json, id: id}
%ssinks:
  - file: {path: %s, fsync: false}
batch: {max_events: 50, max_wait: 5ms}
`, strings.Join(brokers, ","), topic, group, transform, filepath.Join(dir, fmt.Sprintf("out%d.jsonl", gen)))
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reloadProduce(t, brokers, topic, 0, total/2)
	write(1, "")
	var logs, summary testwait.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloads := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runReloading(ctx, file, reloads, log, &summary) }()
	out1, out2 := filepath.Join(dir, "out1.jsonl"), filepath.Join(dir, "out2.jsonl")
	testwait.For(t, "the first generation to store records", func() bool { return lines(out1) > 0 }, logs.String)

	// Reload mid-stream, and produce the second half meanwhile.
	write(2, "  - filter: {keep: 'seq >= 0'}\n")
	reloads <- "test"
	produced := make(chan struct{})
	go func() { defer close(produced); reloadProduce(t, brokers, topic, total/2, total/2) }()

	admin := kafkagroup.NewClient(brokers, nil)
	progress := func() kafkagroup.Progress {
		pctx, pcancel := context.WithTimeout(context.Background(), testwait.Bound())
		defer pcancel()
		p, _ := kafkagroup.Read(pctx, admin, group, topic)
		return p
	}
	stored := func() map[string]int {
		ids := fileIDs(t, out1)
		for id, n := range fileIDs(t, out2) {
			ids[id] += n
		}
		return ids
	}
	testwait.For(t, "every record stored and the commits at the end offsets", func() bool {
		select {
		case <-produced:
		default:
			return false
		}
		p := progress()
		return len(p.Partitions) == partitions && p.Drained() && len(stored()) == total
	}, func() string {
		return fmt.Sprintf("%d of %d ids stored; %s\nsummaries:\n%s", len(stored()), total, progress(), summary.String())
	})
	cancel()
	if err := testwait.Recv(t, done, "run stop after cancel", nil); err != nil {
		t.Fatalf("run: %v", err)
	}

	sums := summaryLine.FindAllStringSubmatch(summary.String(), -1)
	if len(sums) != 2 {
		t.Fatalf("want two summaries (the reload, the end), got:\n%s", summary.String())
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	for i, s := range sums {
		read, written, dropped, dead, abandoned := n(s[1]), n(s[2]), n(s[3]), n(s[4]), n(s[5])
		if read != written+dropped+dead+abandoned {
			t.Fatalf("generation %d: summary does not add up: %s", i+1, s[0])
		}
	}
	gen1Written, gen1Abandoned := n(sums[0][2]), n(sums[0][5])
	if got := len(fileIDs(t, out1)); got == 0 || lines(out1) != gen1Written {
		t.Fatalf("generation 1 stored %d lines (%d ids), its summary says %d written", lines(out1), got, gen1Written)
	}
	if lines(out2) == 0 {
		t.Fatal("the reloaded generation stored nothing")
	}
	ids := stored()
	dups := 0
	for id, c := range ids {
		if c > 1 {
			dups += c - 1
			if c > 2 {
				t.Errorf("%s stored %d times", id, c)
			}
		}
	}
	// The old generation stops like SIGTERM: in-flight batches finish and
	// are committed before the new one joins the group. Only what it gave
	// up unacked (abandoned) may be read again.
	t.Logf("%d records, generation 1 wrote %d and abandoned %d; %d stored twice", total, gen1Written, gen1Abandoned, dups)
	if dups > gen1Abandoned {
		t.Fatalf("%d records stored twice, but generation 1 abandoned only %d (everything else it wrote was committed)", dups, gen1Abandoned)
	}
}
