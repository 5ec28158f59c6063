package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/generate"
)

// buildSluice builds the CLI once per test binary run.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/sluice")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sluice: %v\n%s", err, out)
	}
	return bin
}

// fill runs generate → kafka sink in-process: the path connectors use to
// fill a stream.
func fill(t *testing.T, brokers []string, topic string, count int) {
	t.Helper()
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	kafkasink.Register(reg)
	doc := fmt.Sprintf(`name: fill
source: {generate: {count: %d, duplicates: 0, poison: 0, entities: 2000}}
sinks: [{kafka: {brokers: [%q], topic: %s}}]
`, count, strings.Join(brokers, ","), topic)
	cfg, err := pipeline.Load("fill.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Written != int64(count) {
		t.Fatalf("fill wrote %d of %d", st.Written, count)
	}
}

// outputIDs counts each event id in the JSON-lines file.
func outputIDs(t *testing.T, path string) (map[string]int, map[string][]string) {
	t.Helper()
	ids := map[string]int{}
	byKey := map[string][]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return ids, byKey
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !gjson.ValidBytes(line) {
			continue // a line cut by SIGKILL
		}
		id := gjson.GetBytes(line, "id").String()
		ids[id]++
		key := gjson.GetBytes(line, "key").String()
		byKey[key] = append(byKey[key], id)
	}
	return ids, byKey
}

func TestKafkaConsumerKilledAndRestartedLosesNothing(t *testing.T) {
	const total, maxInFlight = 20000, 50
	brokers := testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(12, "crm.events"), kfake.GroupMinSessionTimeout(200*time.Millisecond))
	fill(t, brokers, "crm.events", total)
	bin := buildSluice(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	cfg := filepath.Join(dir, "consumer.yaml")
	yaml := fmt.Sprintf(`name: crash-test
source:
  kafka:
    brokers: [%q]
    topic: crm.events
    group: crash-test
    commit_interval: 100ms
    max_in_flight_per_partition: %d
    batch_size: 50
    session_timeout: 3s
    heartbeat_interval: 300ms
transforms:
  - decode: {format: json, id: id}
sinks:
  - file: {path: %s}
batch: {max_events: 50, max_wait: 5ms}
`, strings.Join(brokers, ","), maxInFlight, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bytes.Buffer) {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "run", "-c", cfg)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}

	first, stderr := start()
	// Kill once about a quarter is stored, judged by the file's size: cheap
	// to poll, so the kill lands mid-stream even under -race.
	const killAtBytes = 12 << 20
	var began time.Time // when the first event was stored
	deadline := time.Now().Add(30 * time.Second)
	for {
		fi, err := os.Stat(out)
		if err == nil && fi.Size() > 0 && began.IsZero() {
			began = time.Now()
		}
		if err == nil && fi.Size() >= killAtBytes {
			break
		}
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			t.Fatalf("consumer stored under %d bytes in 30s; stderr:\n%s", killAtBytes, stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAfter := time.Since(began)
	committedAtKill := committedSum(t, brokers, "crash-test", "crm.events")
	beforeKill, _ := outputIDs(t, out)
	t.Logf("killed after %s with %d events stored", killedAfter.Round(time.Millisecond), len(beforeKill))
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "ERROR") {
			t.Logf("first run: %s", line)
		}
	}

	second, stderr2 := start()
	deadline = time.Now().Add(60 * time.Second)
	var ids map[string]int
	var byKey map[string][]string
	for {
		ids, byKey = outputIDs(t, out)
		if len(ids) == total {
			break
		}
		if time.Now().After(deadline) {
			_ = second.Process.Kill()
			t.Fatalf("after restart only %d of %d events arrived; stderr:\n%s", len(ids), total, stderr2.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Fatalf("restarted consumer exit after SIGTERM: %v\n%s", err, stderr2.String())
	}
	dups := 0
	for _, n := range ids {
		dups += n - 1
	}
	// A restarted member resumes at the committed offsets: what was stored
	// and committed before the kill must never come back, so at most the
	// stored-but-uncommitted records are delivered twice.
	uncommitted := len(beforeKill) - int(committedAtKill)
	t.Logf("%d events; at the kill %d stored, %d committed; %d delivered twice", total, len(beforeKill), committedAtKill, dups)
	if committedAtKill <= 0 {
		t.Fatalf("nothing was committed in %s of consuming", killedAfter)
	}
	if committedAtKill > int64(len(beforeKill)) {
		t.Fatalf("committed %d records but only %d were stored: commits ran ahead of the sink", committedAtKill, len(beforeKill))
	}
	if dups > uncommitted {
		t.Fatalf("%d duplicates, but only %d stored records were uncommitted at the kill", dups, uncommitted)
	}
	// Per key, the first arrival of each event follows production order,
	// which for a key is the order its events were generated in.
	for key, seq := range byKey {
		seen := map[string]bool{}
		var firsts []string
		for _, id := range seq {
			if !seen[id] {
				seen[id] = true
				firsts = append(firsts, id)
			}
		}
		for i := 1; i < len(firsts); i++ {
			if genIndex(firsts[i]) < genIndex(firsts[i-1]) {
				t.Fatalf("key %s: %s arrived before %s", key, firsts[i-1], firsts[i])
			}
		}
	}
}

// committedSum adds up the group's committed offsets over 12 partitions:
// the number of records it will not read again.
func committedSum(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second}
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	resp, err := c.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	var sum int64
	for _, p := range resp.Topics[topic] {
		sum += max(0, p.CommittedOffset)
	}
	return sum
}

// genIndex is the generation counter in a generated id ("evt_1_2s" → base-36 2s).
func genIndex(id string) int64 {
	i := strings.LastIndexByte(id, '_')
	var n int64
	for _, c := range id[i+1:] {
		switch {
		case c >= '0' && c <= '9':
			n = n*36 + int64(c-'0')
		case c >= 'a' && c <= 'z':
			n = n*36 + int64(c-'a'+10)
		}
	}
	return n
}
