package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/bench"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/internal/vendorreplay"
	"github.com/sluicehq/sluice/pipeline"
)

// setExampleSecrets sets the secrets examples take from the environment (no
// defaults, on purpose): a throwaway P-256 public key, a dummy Mailgun signing
// key and an SNS topic ARN, as the Makefile's EXAMPLE_SECRETS does.
func setExampleSecrets(t *testing.T) {
	t.Setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEk4a7WLkJRDh9mTALI7YPuFZxU8xFIWNVoUn8KdxVkCLqja+bWgpbmCgp/Tm7S9/FA5+ju39X1RixNS5KsXrjZg==")
	t.Setenv("MAILGUN_WEBHOOK_SIGNING_KEY", "example-signing-key")
	t.Setenv("SES_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:ses-events")
}

func TestValidateExamples(t *testing.T) {
	setExampleSecrets(t)
	// Examples are run from the repository root, and name files from there.
	t.Chdir("../..")
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := execute([]string{"validate", "-c", f}, &out, &errOut); code != 0 {
				t.Fatalf("validate %s exit %d:\n%s", f, code, errOut.String())
			}
			if !strings.Contains(out.String(), f+": ok") {
				t.Fatalf("output %q", out.String())
			}
		})
	}
}

func TestValidateBrokenConfigs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "name: x\nsource: {generate: {}}\nsinks:\n  - file: {path: a, fsinc: true}\n", "bad.yaml:4: sinks[0].file.fsinc: unknown field (did you mean fsync?)"},
		{"wrong type", "name: x\nsource: {generate: {count: lots}}\nsinks: [{stdout: {}}]\n", `bad.yaml:2: source.generate.count: expected a whole number, got "lots"`},
		{"unknown component", "name: x\nsource: {generate: {}}\ntransforms:\n  - decodee: {format: json}\nsinks: [{stdout: {}}]\n", "bad.yaml:4: transforms[0].decodee: unknown transform (did you mean decode?)"},
		{"bad duration", "name: x\nsource: {generate: {}}\nsinks: [{stdout: {}}]\nbatch:\n  max_wait: 100 ms\n", `bad.yaml:5: batch.max_wait: "100 ms" is not a duration`},
		{"bad rate", "name: x\nsource: {generate: {rate: fast}}\nsinks: [{stdout: {}}]\n", `bad.yaml:2: source.generate.rate: "fast" is not a rate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := execute([]string{"validate", "-c", f}, &out, &errOut)
			if code == 0 {
				t.Fatal("validate exited 0 for a broken file")
			}
			if want := filepath.Join(dir, tc.want); !strings.Contains(errOut.String(), want) {
				t.Fatalf("stderr:\n%s\nwant %q", errOut.String(), want)
			}
		})
	}
}

func TestRunFileToFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var lines []string
	for i := range 1200 {
		lines = append(lines, `{"id":"e`+strconv.Itoa(i)+`","key":"k`+strconv.Itoa(i%7)+`","n":`+strconv.Itoa(i)+`}`)
	}
	lines = append(lines, `{"id":"broken"`) // poison: must be dead-lettered
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "p.yaml")
	yaml := "name: f2f\nsource: {file: {path: " + in + ", key_field: key}}\ntransforms: [{decode: {format: json}}]\n" +
		"sinks: [{file: {path: " + filepath.Join(dir, "out.jsonl") + "}}]\ndead_letter: {file: {path: " + filepath.Join(dir, "dead.jsonl") + "}}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := execute([]string{"run", "-c", cfg, "--log-format", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := countLines(t, filepath.Join(dir, "out.jsonl")); got != 1200 {
		t.Fatalf("out.jsonl has %d lines, want 1200", got)
	}
	if got := countLines(t, filepath.Join(dir, "dead.jsonl")); got != 1 {
		t.Fatalf("dead.jsonl has %d lines, want 1", got)
	}
	if !strings.Contains(out.String(), "1201 events read") || !strings.Contains(out.String(), "1200 written") {
		t.Fatalf("summary = %q", out.String())
	}
}

// TestRunProfiles: --cpuprofile and --memprofile write pprof files (gzip
// protobuf) when the run ends.
func TestRunProfiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(`{"id":"a"}`+"\n"+`{"id":"b"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "p.yaml")
	yaml := "name: prof\nsource: {file: {path: " + in + "}}\ntransforms: [{decode: {format: json, id: id}}]\n" +
		"sinks: [{file: {path: " + filepath.Join(dir, "out.jsonl") + "}}]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	var out, errOut bytes.Buffer
	if code := execute([]string{"run", "-c", cfg, "--cpuprofile", cpu, "--memprofile", mem, "--log-format", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s is not a gzipped pprof profile (%d bytes)", filepath.Base(p), len(b))
		}
	}
	if code := execute([]string{"run", "-c", cfg, "--cpuprofile", filepath.Join(dir, "no", "such", "dir")}, &out, &errOut); code == 0 {
		t.Error("an uncreatable --cpuprofile path did not fail the run")
	}
}

// TestSIGTERMShutdownLosesNothing runs the real binary on an endless
// generated stream, stops it with SIGTERM, and checks it exits 0 with every
// event it reported as settled present in the output.
func TestSIGTERMShutdownLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "p.yaml")
	yaml := "name: endless\nsource: {generate: {rate: 5000/s, poison: 0.01}}\ntransforms: [{decode: {format: json}}]\n" +
		"sinks: [{file: {path: " + filepath.Join(dir, "out.jsonl") + "}}]\ndead_letter: {file: {path: " + filepath.Join(dir, "dead.jsonl") + "}}\n" +
		"delivery: {shutdown_timeout: 10s}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// stderr is read only once the process has exited (os/exec writes it
	// until then): SIGQUIT makes a hung child print its goroutines first.
	hung := func() string {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-waited:
		case <-time.After(testwait.Bound()):
			_ = cmd.Process.Kill()
			<-waited
		}
		return "stderr:\n" + stderr.String()
	}
	testwait.ForEvery(t, 50*time.Millisecond, "2000 events written by the child", func() bool {
		return countLines(t, filepath.Join(dir, "out.jsonl")) >= 2000
	}, func() string {
		return fmt.Sprintf("%d lines; %s", countLines(t, filepath.Join(dir, "out.jsonl")), hung())
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := testwait.Recv(t, waited, "exit after SIGTERM", hung); err != nil {
		t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`(\d+) events read .*: (\d+) written, (\d+) dropped, (\d+) dead-lettered, (\d+) abandoned`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no summary in %q", stdout.String())
	}
	read, _ := strconv.Atoi(m[1])
	written, _ := strconv.Atoi(m[2])
	dropped, _ := strconv.Atoi(m[3])
	dead, _ := strconv.Atoi(m[4])
	abandoned, _ := strconv.Atoi(m[5])
	if written+dropped+dead+abandoned != read {
		t.Fatalf("summary does not add up: %q", m[0])
	}
	if got := countLines(t, filepath.Join(dir, "out.jsonl")); got != written {
		t.Fatalf("out.jsonl has %d lines, summary says %d written", got, written)
	}
	if got := countLines(t, filepath.Join(dir, "dead.jsonl")); got != dead {
		t.Fatalf("dead.jsonl has %d lines, summary says %d dead-lettered", got, dead)
	}
	if m[5] != "0" {
		t.Fatalf("%s events abandoned despite a 10s shutdown deadline", m[5])
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	return n
}

// demoEnv points the demo at what its mode needs: a fresh in-process Kafka
// for kafka and stores, the test stack's MongoDB and Elasticsearch for
// stores.
func demoEnv(t *testing.T, mode string) {
	t.Helper()
	t.Setenv("SLUICE_METRICS_ADDR", "127.0.0.1:0")
	if mode != "files" {
		t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(testenv.StartKafka(t, kfake.NumBrokers(3)), ","))
	}
	if mode == "stores" {
		esURL, user, pass := testenv.ElasticsearchURL(t)
		t.Setenv("SLUICE_MONGO_URI", testenv.MongoURI(t))
		t.Setenv("SLUICE_ES_URL", esURL)
		t.Setenv("SLUICE_ES_USERNAME", user)
		t.Setenv("SLUICE_ES_PASSWORD", pass)
		t.Setenv("SLUICE_ES_FLAVOR", testenv.ElasticsearchFlavor())
	}
}

func TestDemo(t *testing.T) {
	for _, mode := range []string{"files", "kafka", "stores"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("SLUICE_DEMO_COUNT", "3000")
			t.Setenv("SLUICE_DEMO_RATE", "20000/s")
			dir := t.TempDir()
			var out, errOut bytes.Buffer
			demoEnv(t, mode)
			if code := execute([]string{"demo", "--source", "generated", "--mode", mode, "--out", dir, "--log-level", "error"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
			}
			written, dead := countLines(t, filepath.Join(dir, "events.jsonl")), countLines(t, filepath.Join(dir, "dead-letter.jsonl"))
			summary := fmt.Sprintf("%d written, %d dead-lettered", written, dead)
			if mode == "stores" {
				// Dedupe drops the generator's duplicates before the stores.
				m := regexp.MustCompile(`(\d+) dropped`).FindStringSubmatch(out.String())
				if m == nil || m[1] == "0" {
					t.Fatalf("no duplicates dropped:\n%s", out.String())
				}
				dropped, _ := strconv.Atoi(m[1])
				written += dropped
			}
			if written+dead != 3000 || dead == 0 {
				t.Fatalf("%d written + %d dead-lettered, want 3000 with some poison dead-lettered\n%s", written, dead, out.String())
			}
			if !strings.Contains(out.String(), summary) {
				t.Fatalf("summary does not match the files:\n%s", out.String())
			}
		})
	}
}

// TestDemoRecorded: `sluice demo` replays the recorded vendor payloads
// through every connector, the stream and the consumer, in each mode: every
// recorded record and webhook event lands once in events.jsonl, the
// repeated SendGrid event is dropped, and the replay's auth, rate-limit and
// bad-signature paths all ran.
func TestDemoRecorded(t *testing.T) {
	set, err := vendorreplay.Load(vendorreplay.Recorded())
	if err != nil {
		t.Fatal(err)
	}
	fed := set.Records(vendorreplay.Salesforce) + set.Records(vendorreplay.HubSpot) + set.Records(vendorreplay.Greenhouse) +
		set.Records(vendorreplay.Lever) + set.WebhookEvents()
	for _, mode := range []string{"files", "kafka", "stores"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut bytes.Buffer
			demoEnv(t, mode)
			if code := execute([]string{"demo", "--mode", mode, "--out", dir, "--log-level", "error"}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
			}
			// The Kafka-only consumer decodes and writes; the others also
			// drop the SendGrid event recorded twice (a provider retry).
			stored, dropped := fed-1, 1
			if mode == "kafka" {
				stored, dropped = fed, 0
			}
			summary := fmt.Sprintf("%d events in", fed)
			written := fmt.Sprintf("%d written, 0 dead-lettered, %d dropped", stored, dropped)
			if !strings.Contains(out.String(), summary) || !strings.Contains(out.String(), written) {
				t.Fatalf("want %q and %q in the summary:\n%s", summary, written, out.String())
			}
			f, err := os.Open(filepath.Join(dir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ids, sources := map[string]int{}, map[string]int{}
			lines, noAccount := 0, 0
			bounces := map[string][]string{}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				lines++
				ids[gjson.GetBytes(sc.Bytes(), "id").String()]++
				src := gjson.GetBytes(sc.Bytes(), "source").String()
				sources[src]++
				if gjson.GetBytes(sc.Bytes(), "account_id").String() == "" {
					noAccount++
				}
				if k := gjson.GetBytes(sc.Bytes(), "bounce.kind"); k.Exists() && !slices.Contains(bounces[src], k.Str) {
					bounces[src] = append(bounces[src], k.Str)
					slices.Sort(bounces[src])
				}
			}
			if lines != stored || len(ids) != fed-1 {
				t.Errorf("%d events (%d distinct) in events.jsonl, want %d (%d distinct)", lines, len(ids), stored, fed-1)
			}
			for id, n := range ids {
				if n != 1 && (mode != "kafka" || n != 2) {
					t.Errorf("%s written %d times", id, n)
				}
			}
			want := map[string]int{"salesforce": 30, "hubspot": 20, "greenhouse": 15, "lever": 6, "sendgrid": 11 + 1 - dropped, "mailgun": 6, "ses": 5}
			if fmt.Sprint(sources) != fmt.Sprint(want) {
				t.Errorf("events per source %v, want %v", sources, want)
			}
			if noAccount != 0 {
				t.Errorf("%d events without account_id", noAccount)
			}
			// The recorded bounces: SendGrid type bounce and blocked, Mailgun
			// severity permanent and temporary, SES bounceType Permanent.
			if want := "map[mailgun:[hard soft] sendgrid:[blocked hard] ses:[hard]]"; mode != "kafka" && fmt.Sprint(bounces) != want {
				t.Errorf("bounce kinds %v, want %s", bounces, want)
			}
			if mode != "kafka" && !strings.Contains(out.String(), "email bounces (source:kind count):") {
				t.Errorf("no bounce kinds in the demo output:\n%s", out.String())
			}
			for _, line := range []string{"answered 401, nothing enqueued", "1 SNS subscription confirmed"} {
				if !strings.Contains(out.String(), line) {
					t.Errorf("no %q in the replay report:\n%s", line, out.String())
				}
			}
			for _, re := range []string{`salesforce .* [1-9]\d* answered 401`, `hubspot .* [1-9]\d* answered 429`} {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("no match for %s in the replay report:\n%s", re, out.String())
				}
			}
		})
	}
}

// TestEmbeddedPipelinesLoad: the pipelines compiled into the binary (demo,
// bench) must load with the components this binary links.
func TestEmbeddedPipelinesLoad(t *testing.T) {
	env := map[string]string{
		"SLUICE_KAFKA_BROKERS": "127.0.0.1:9092", "SLUICE_MONGO_URI": "mongodb://127.0.0.1:27017/", "SLUICE_ES_URL": "http://127.0.0.1:9200",
		"SLUICE_OUT_DIR": t.TempDir(), "SLUICE_DEMO_TOPIC": "t", "SLUICE_DEMO_GROUP": "g",
		"BENCH_TOPIC": "t", "BENCH_GROUP": "g", "BENCH_OUT": t.TempDir(),
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for name, doc := range map[string][]byte{
		"demo/files.yaml": demoFiles, "demo/producer.yaml": demoProducer, "demo/consumer.yaml": demoConsumer,
		"demo/consumer-stores.yaml": demoConsumerStores, "bench/consumer.yaml": bench.DefaultConsumer(),
		"bench/consumer-kinesis.yaml": bench.DefaultKinesisConsumer(),
	} {
		if _, err := pipeline.Load(name, doc, registry(), getenv); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
