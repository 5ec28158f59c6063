package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
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
	// Bounded only against a hang: filling is slow on a busy machine.
	run := pipelinetest.Start(t, "fill.yaml", doc, reg)
	if err := run.Wait(t); err != nil {
		t.Fatal(err)
	}
	p := run.Pipeline
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
	const total, maxInFlight, group, topic = 20000, 50, "crash-test", "crm.events"
	brokers := testenv.StartKafka(t, kfake.NumBrokers(3), kfake.SeedTopics(12, topic))
	fill(t, brokers, topic, total)
	bin := buildSluice(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	cfg := filepath.Join(dir, "consumer.yaml")
	// Session timeout and heartbeats stay at their defaults (30s, 3s): a
	// loaded machine must not rebalance the group by accident. The one
	// rebalance this test wants, after the kill, it makes itself.
	yaml := fmt.Sprintf(`name: crash-test
source:
  kafka:
    brokers: [%q]
    topic: %s
    group: %s
    commit_interval: 100ms
    max_in_flight_per_partition: %d
    batch_size: 50
transforms:
  - decode: {format: json, id: id}
sinks:
  - file: {path: %s}
batch: {max_events: 50, max_wait: 5ms}
`, strings.Join(brokers, ","), topic, group, maxInFlight, out)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := kafkagroup.NewClient(brokers, nil)
	progress := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		defer cancel()
		p, err := kafkagroup.Read(ctx, admin, group, topic)
		if err != nil {
			return fmt.Sprintf("%s (%v)", p, err)
		}
		return p.String()
	}

	first := startChild(t, bin, "run", "-c", cfg)
	// Kill once about a quarter is stored, judged by the file's size: cheap
	// to poll, so the kill lands mid-stream. However slow the machine, only
	// a consumer that stops storing fails here.
	const killAtBytes = 12 << 20
	size := func() int64 {
		fi, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	testwait.ForEvery(t, time.Millisecond, fmt.Sprintf("%d bytes stored by the first consumer", killAtBytes),
		func() bool { return size() >= killAtBytes },
		func() string { return fmt.Sprintf("%d bytes stored; %s\n%s", size(), progress(), first.dump()) })
	first.kill(t)
	committedAtKill := mustProgress(t, admin, group, topic).Committed()
	beforeKill, _ := outputIDs(t, out)
	t.Logf("killed with %d events stored, %d committed", len(beforeKill), committedAtKill)
	first.logProblems(t, "first run")
	// The killed member would hold its partitions until its session
	// expires; remove it now, as an operator would.
	evictMembers(t, admin, group)

	second := startChild(t, bin, "run", "-c", cfg)
	// Done when the group has committed every partition to its end, read
	// from the broker: then every record was stored, however long it took.
	testwait.ForEvery(t, 200*time.Millisecond, "commits reaching the end offsets after the restart",
		func() bool { return mustProgress(t, admin, group, topic).Drained() },
		func() string {
			ids, _ := outputIDs(t, out)
			return fmt.Sprintf("%d of %d events stored; %s\n%s", len(ids), total, progress(), second.dump())
		})
	second.stop(t)
	second.logProblems(t, "restarted run")
	t.Logf("restarted member: %d generation(s)", strings.Count(second.stderr.String(), "kafka partitions assigned"))
	ids, byKey := outputIDs(t, out)
	if len(ids) != total {
		t.Fatalf("the group committed every offset but only %d of %d events were stored: %s", len(ids), total, progress())
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
		t.Fatalf("nothing was committed before the kill, with %d events stored", len(beforeKill))
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

// mustProgress reads the group's committed and end offsets from the broker.
func mustProgress(t *testing.T, admin kafkagroup.Client, group, topic string) kafkagroup.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	p, err := kafkagroup.Read(ctx, admin, group, topic)
	if err != nil {
		t.Fatalf("group progress: %v", err)
	}
	return p
}

// evictMembers removes every member of the group (LeaveGroup on their
// behalf), so the next member gets every partition at once instead of
// after the dead member's session timeout. A broker that refuses only
// makes the test wait for that timeout.
func evictMembers(t *testing.T, admin *kafkago.Client, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	desc, err := admin.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(desc.Groups) != 1 {
		t.Logf("describe group %s: %v; waiting out the session timeout instead", group, err)
		return
	}
	var members []kafkago.LeaveGroupRequestMember
	for _, m := range desc.Groups[0].Members {
		members = append(members, kafkago.LeaveGroupRequestMember{ID: m.MemberID})
	}
	if len(members) == 0 {
		return
	}
	resp, err := admin.LeaveGroup(ctx, &kafkago.LeaveGroupRequest{GroupID: group, Members: members})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		t.Logf("evict %d member(s) of %s: %v; waiting out the session timeout instead", len(members), group, err)
		return
	}
	t.Logf("evicted %d member(s) of %s", len(members), group)
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
