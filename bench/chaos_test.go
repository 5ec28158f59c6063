package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

// chaosConsumer is a consumer the chaos test's `sluice run` processes
// run: Kafka → decode → MongoDB (an idempotent store, one collection per
// run), malformed events to a dead-letter file per process.
const chaosConsumer = `name: chaos-test-consumer
source:
  kafka: {brokers: ["${SLUICE_KAFKA_BROKERS}"], topic: "${BENCH_TOPIC}", group: "${BENCH_GROUP}", session_timeout: 10s}
transforms:
  - decode: {format: json, id: id, time: occurred_at}
sinks:
  - mongodb: {uri: "%s", database: bench_chaos, collection: "${BENCH_GROUP}", mode: insert}
dead_letter:
  file: {path: "${BENCH_OUT}/dead-letter.jsonl"}
batch: {max_events: 200, max_wait: 50ms}
`

func chaosRegistry() *pipeline.Registry {
	r := registry(nil)()
	mongosink.Register(r)
	return r
}

// buildSluice builds cmd/sluice for the consumers to run.
func buildSluice(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice").CombinedOutput()
	if err != nil {
		t.Fatalf("build sluice: %v\n%s", err, out)
	}
	return bin
}

// TestChaosConsumerFaults runs a small chaos profile against the shared
// stack: three `sluice run` consumers, 3000 events, and one of each
// consumer fault (kill -9, SIGTERM, a member added). Only processes the
// test started are signalled. It waits on the group's committed offsets
// (RunChaos ends when they reach the topic's end), never on speed.
func TestChaosConsumerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a consumer group")
	}
	brokers := strings.Join(testenv.KafkaBrokers(t), ",")
	mongoURI := testenv.MongoURI(t)
	bin := buildSluice(t)
	out := t.TempDir()
	var progress strings.Builder
	res, err := RunChaos(context.Background(), ChaosOptions{
		Options: Options{
			Registry: chaosRegistry, Binary: bin, Brokers: brokers, OutDir: out,
			ConsumerConfig: []byte(fmt.Sprintf(chaosConsumer, mongoURI)), ConsumerFile: "chaos-consumer.yaml",
			Duplicates: 0.02, Poison: 0.01, Seed: 11, Drain: testwait.Bound(), Progress: &progress,
		},
		Consumers: 3, Rate: 500, Duration: 6 * time.Second,
		Faults:   []string{FaultKill9, FaultSIGTERM, FaultRebalance},
		EveryMin: time.Second, EveryMax: 2 * time.Second, MinFaults: 3,
	})
	if err != nil {
		t.Fatalf("chaos run: %v\nprogress:\n%s", err, progress.String())
	}
	var report strings.Builder
	WriteChaos(&report, res)
	t.Log("\n" + report.String())
	a := res.Audit
	if a.Sent != 3000 || a.Lost != 0 || a.Duplicated != 0 || a.DeadLettered != a.Poison || a.Poison == 0 {
		t.Fatalf("%s (poison %d)", a.Line(), a.Poison)
	}
	checkDeleted(t, res, "collection bench_chaos.bench-chaos-"+res.Stamp, "consumer group bench-chaos-"+res.Stamp, "topic bench.chaos."+res.Stamp)
	seen := map[string]bool{}
	for _, f := range res.Faults {
		if f.Err != "" || f.Class == "crash" {
			t.Errorf("fault %+v", f)
		}
		seen[f.Class] = true
	}
	for _, c := range []string{FaultKill9, FaultSIGTERM, FaultRebalance} {
		if !seen[c] {
			t.Errorf("no %s in the timeline %+v", c, res.Faults)
		}
	}
	restarted := 0
	for _, c := range res.Consumers {
		if c.PeakRSSMiB <= 0 {
			t.Errorf("consumer %d: no peak RSS read", c.Slot)
		}
		if c.Processes > 1 {
			restarted++
		}
	}
	if len(res.Consumers) < 4 || restarted == 0 {
		t.Errorf("consumers %+v: want a member added and one restarted", res.Consumers)
	}
	// Read counts come from each process's metrics, scraped once a second:
	// what a kill -9'd consumer read after its last scrape is counted by
	// nobody, so the figure is a lower bound (the audit is the proof that
	// nothing was lost). A failed run once read 2,999 of 3,000 here.
	if res.Settled <= 0 || len(res.Series) == 0 {
		t.Errorf("read %d of %d sent (%d re-read), %d seconds sampled", res.Settled, a.Sent, res.Reread, len(res.Series))
	}
	if err := WriteHTML(filepath.Join(out, "chart.html"), res); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(filepath.Join(out, "chart.html"))
	if n := strings.Count(string(page), `class="fault"`); n != 3*len(res.Faults) {
		t.Errorf("chart marks %d faults on 3 charts, want %d", n, 3*len(res.Faults))
	}
}

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"kill9,sigterm,rebalance", []string{"kill9", "sigterm", "rebalance"}, ""},
		{" store-stall , broker-stall ", []string{"store-stall", "broker-stall"}, ""},
		{"kill9,oom", nil, `unknown fault class "oom"`},
		{"kill9,kill9", nil, "listed twice"},
		{"", nil, "no fault classes"},
		{",", nil, "no fault classes"},
	} {
		got, err := ParseFaults(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFaults(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseFaults(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseEvery(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi time.Duration
		ok     bool
	}{
		{"10s", 10 * time.Second, 10 * time.Second, true},
		{"5s-15s", 5 * time.Second, 15 * time.Second, true},
		{"500ms - 2s", 500 * time.Millisecond, 2 * time.Second, true},
		{"15s-5s", 0, 0, false},
		{"0s", 0, 0, false},
		{"-5s", 0, 0, false},
		{"often", 0, 0, false},
		{"5s-", 0, 0, false},
	} {
		lo, hi, err := ParseEvery(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("ParseEvery(%q) = %s, %s, %v", tc.in, lo, hi, err)
		}
	}
}

// TestChaosRefusesImpossibleSchedules: a schedule that cannot be honoured
// is refused before anything starts.
func TestChaosRefusesImpossibleSchedules(t *testing.T) {
	good := ChaosOptions{Options: Options{Binary: "sluice"}, Consumers: 3, Rate: 100, Duration: time.Minute,
		Faults: []string{FaultKill9}, EveryMin: 5 * time.Second, EveryMax: 15 * time.Second, Stall: 10 * time.Second}
	if err := good.validate(); err != nil {
		t.Fatalf("a sound schedule refused: %v", err)
	}
	kin := good
	kin.Stream, kin.Faults = "kinesis", []string{FaultKill9, FaultSIGSTOP, FaultSplit, FaultBrokerStall, FaultRebalance}
	if err := kin.validate(); err != nil {
		t.Fatalf("a sound kinesis schedule refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*ChaosOptions)
		want string
	}{
		{"no consumers", func(o *ChaosOptions) { o.Consumers = 0 }, "at least one consumer"},
		{"first fault after the load", func(o *ChaosOptions) { o.Duration = 3 * time.Second }, "no fault would be injected"},
		{"inverted range", func(o *ChaosOptions) { o.EveryMin, o.EveryMax = 10*time.Second, time.Second }, "MIN <= MAX"},
		{"unknown class", func(o *ChaosOptions) { o.Faults = []string{"meteor"} }, `unknown fault class "meteor"`},
		{"stall without a length", func(o *ChaosOptions) { o.Faults, o.Stall = []string{FaultStoreStall}, 0 }, "positive duration"},
		{"unknown stream", func(o *ChaosOptions) { o.Stream = "pulsar" }, "drives kafka or kinesis"},
		{"split on kafka", func(o *ChaosOptions) { o.Faults = []string{FaultSplit} }, "fault class split does not apply to --stream kafka"},
		{"broker-kill on kinesis", func(o *ChaosOptions) { o.Stream, o.Faults = "kinesis", []string{FaultBrokerKill} }, "does not apply to --stream kinesis: kinesalite keeps its streams in RAM"},
		{"no rate", func(o *ChaosOptions) { o.Rate = 0 }, "positive --rate"},
		{"empty restart hook", func(o *ChaosOptions) { o.RestartCmd = map[string]string{"mongo": " "} }, "has no command"},
	} {
		o := good
		tc.edit(&o)
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		buckets map[float64]int64
		q, want float64
	}{
		{map[float64]int64{}, 0.99, 0},
		{map[float64]int64{0.005: 90, 0.01: 99, 0.02: 100, inf: 100}, 0.99, 10},
		{map[float64]int64{0.005: 90, 0.01: 98, 0.02: 100, inf: 100}, 0.99, 20},
		{map[float64]int64{0.005: 0, 0.01: 0, inf: 10}, 0.5, 10}, // beyond the last bound: that bound
	} {
		if got := bucketQuantile(tc.buckets, tc.q); got != tc.want {
			t.Errorf("bucketQuantile(%v, %g) = %g, want %g", tc.buckets, tc.q, got, tc.want)
		}
	}
}

// TestRecoveryTracking: recovery is from the fault until the lag, after
// rising above one second of traffic, is back under it.
func TestRecoveryTracking(t *testing.T) {
	r := &chaosRun{o: ChaosOptions{Rate: 100}}
	quiet := &FaultRecord{At: 1}
	lagged := &FaultRecord{At: 2, active: true}
	r.faults = []*FaultRecord{quiet, lagged}
	for _, s := range []Second{{T: 2, Lag: 50}, {T: 3, Lag: 500}, {T: 4, Lag: 300}, {T: 5, Lag: 90}} {
		if s.T == 4 {
			lagged.active = false
		}
		r.trackRecovery(s)
	}
	if quiet.RecoveredAfter != 4 || !quiet.resolved {
		t.Errorf("quiet fault: %+v, want recovered 4s after (lag over at 3s, back at 5s)", *quiet)
	}
	if lagged.RecoveredAfter != 3 || !lagged.resolved {
		t.Errorf("lagged fault: %+v, want recovered 3s after", *lagged)
	}
	never := &FaultRecord{At: 6}
	r.faults = []*FaultRecord{never}
	r.trackRecovery(Second{T: 7, Lag: 10})
	if never.exceeded || never.resolved {
		t.Errorf("a fault with no lag: %+v", *never)
	}
}

// TestChaosSampleEndsOnDrain: the run ends when the group's committed
// offsets reach the end offsets — not before the producer and the faults
// are done — and a group that never drains is an error once the drain
// bound passed.
func TestChaosSampleEndsOnDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		drained bool
		wantErr string
	}{
		{"drained", true, ""},
		{"stuck", false, "did not drain"},
		{"void", false, "the topic lost records"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &chaosRun{o: ChaosOptions{Rate: 10, Duration: time.Second, Options: Options{Drain: time.Millisecond, Progress: &lockedWriter{w: &strings.Builder{}}}},
				start: time.Now(), fleet: newFleet("", "", t.TempDir(), "source.kafka", nil), fatal: make(chan error, 1)}
			reads := 0
			progress := func(context.Context) (streamProgress, error) {
				if reads++; tc.name == "void" && reads > 1 {
					return streamProgress{}, &voidRun{"the topic lost records mid-run"}
				}
				committed := int64(5)
				if tc.drained && r.produced.Load() {
					committed = 10
				}
				return streamProgress{Committed: committed, Lag: 10 - committed, Drained: committed == 10}, nil
			}
			producerDone, faultsDone := make(chan error, 1), make(chan struct{})
			res := &Result{}
			go func() {
				producerDone <- nil
				close(faultsDone)
			}()
			err := r.sample(context.Background(), res, producerDone, faultsDone, func() int64 { return 10 }, progress)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("sample = %v, want %q", err, tc.wantErr)
			}
			if len(res.Series) == 0 || res.Series[len(res.Series)-1].Lag != map[bool]int64{true: 0, false: 5}[tc.drained] {
				t.Fatalf("series %+v", res.Series)
			}
		})
	}
}

func TestTopicLost(t *testing.T) {
	ends := map[int]int64{}
	parts := func(end ...int64) kafkagroup.Progress {
		var p kafkagroup.Progress
		for i, e := range end {
			p.Partitions = append(p.Partitions, kafkagroup.Partition{ID: i, End: e})
		}
		return p
	}
	for i, tc := range []struct {
		pr   kafkagroup.Progress
		want string
	}{
		{parts(0, 0, 0), ""},
		{parts(10, 5, 7), ""},
		{parts(12, 5, 9), ""},
		{parts(12, 3, 9), "partition 1 ended at 5, then at 3"},
		{parts(40), "3 partitions, then 1"},
	} {
		if got := topicLost(ends, tc.pr); got != tc.want {
			t.Errorf("read %d: topicLost = %q, want %q", i, got, tc.want)
		}
	}
}

func TestStoreServer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "opensearch.pid"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, sink, want string }{
		{dir, "elasticsearch", "opensearch"},
		{dir, "mongodb", "mongo"}, // no pid file: the first name, reported missing
		{"", "elasticsearch", "elasticsearch"},
		{dir, "redis", "redis"},
	} {
		if got := storeServer(tc.dir, tc.sink); got != tc.want {
			t.Errorf("storeServer(%q, %s) = %s, want %s", tc.dir, tc.sink, got, tc.want)
		}
	}
}

// TestChaosCrashLoopEnds: consumers that keep exiting on their own (here
// a "binary" that always fails) are restarted up to the number of
// consumers, then the run ends with the last one's stderr.
func TestChaosCrashLoopEnds(t *testing.T) {
	falseBin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1)")
	}
	r := &chaosRun{o: ChaosOptions{Consumers: 2, Rate: 10, Duration: time.Second, Options: Options{Drain: time.Hour, Progress: &lockedWriter{w: &strings.Builder{}}}},
		start: time.Now(), fleet: newFleet(falseBin, "c.yaml", t.TempDir(), "source.kafka", nil), fatal: make(chan error, 1)}
	for slot := 1; slot <= 2; slot++ {
		if _, err := r.fleet.start(slot); err != nil {
			t.Fatal(err)
		}
	}
	progress := func(context.Context) (streamProgress, error) {
		return streamProgress{Committed: 0, Lag: 10}, nil
	}
	err = r.sample(context.Background(), &Result{}, make(chan error), make(chan struct{}), func() int64 { return 0 }, progress)
	if err == nil || !strings.Contains(err.Error(), "3 consumer processes exited on their own, more than the 2 consumers") {
		t.Fatalf("sample = %v", err)
	}
	if err := r.fleet.stopAll(time.Minute); err != nil {
		t.Fatal(err)
	}
	crashes := 0
	for _, f := range r.faults {
		if f.Class == "crash" {
			crashes++
		}
	}
	if crashes != 3 {
		t.Fatalf("%d crashes in the timeline %+v, want 3", crashes, r.faults)
	}
}
