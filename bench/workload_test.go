package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/file"
	"github.com/sluicehq/sluice/transforms/decode"
	"github.com/sluicehq/sluice/transforms/dedupe"
	"github.com/sluicehq/sluice/transforms/mapping"
)

// BenchmarkEngineFile is the engine workload of issue #19, measured side by
// side with other stream processors: a JSON-lines file of ~1 KB events →
// decode (id and time) → map (lowercase email, add email_domain and
// processed_at) → dedupe on id (1M-key window) → discard, through the real
// runner. One op is one pass over the whole file.
//
// Reported per event: cpu-s/Mevents (user+system CPU of this process per
// million events), ns/event (wall), allocs/event and B/event (heap), and
// peak-RSS-MiB (the process's maximum resident set so far), and what the
// RSS is made of: peak-live-MiB (the largest heap marked live by a GC
// during the runs) and peak-goal-MiB (the largest heap size the GC let the
// heap grow to before collecting). SLUICE_BENCH_HEAPPROFILE=FILE writes a
// heap profile (in use as of the last GC) once 90% of the events reached
// the sink, when the dedupe window is nearly full.
//
// The file has SLUICE_BENCH_EVENTS lines (default 1,000,000, ≈1 GB) and is
// written once to the temp directory and reused; SLUICE_BENCH_BATCH sets
// the source's and the runner's batch size (default 500):
//
//	go test -run '^$' -bench EngineFile -benchtime 1x -count 5 ./bench/
func BenchmarkEngineFile(b *testing.B) {
	n := envInt(b, "SLUICE_BENCH_EVENTS", 1_000_000)
	batch := envInt(b, "SLUICE_BENCH_BATCH", 500)
	path := workloadFile(b, n)
	warmPageCache(b, path)
	var cpu time.Duration
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	peaks := watchHeap(b, os.Getenv("SLUICE_BENCH_HEAPPROFILE"), int64(n)*9/10)
	b.ResetTimer()
	for range b.N {
		cpu0 := processCPU()
		got := runWorkload(b, path, batch, peaks.sink)
		cpu += processCPU() - cpu0
		if got != int64(n) {
			b.Fatalf("sink got %d events, want %d (all ids are distinct)", got, n)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	_, rss := rusage()
	events := float64(b.N) * float64(n)
	b.ReportMetric(cpu.Seconds()/events*1e6, "cpu-s/Mevents")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/events, "B/event")
	b.ReportMetric(rss, "peak-RSS-MiB")
	live, goal := peaks.stop()
	b.ReportMetric(float64(live)/(1<<20), "peak-live-MiB")
	b.ReportMetric(float64(goal)/(1<<20), "peak-goal-MiB")
}

// warmPageCache reads the file once, untimed: a run that finds it out of
// the page cache spends seconds of CPU in read(2) (bench/RESULTS.md), which
// measures the disk, not the engine.
func warmPageCache(b *testing.B, path string) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		b.Fatal(err)
	}
}

// workloadPipeline is the pipeline of the workload, for a file and a batch size.
const workloadPipeline = `name: engine-file
source:
  file: {path: %q, batch_size: %d}
transforms:
  - decode: {format: json, id: id, time: time}
  - map:
      set:
        email: 'lower(email)'
        email_domain: 'split(lower(email), "@")[1]'
        processed_at: 'now()'
  - dedupe: {capacity: 1000000, window: 1h}
sinks: [{discard: {}}]
batch: {max_events: %d, max_wait: 50ms}
`

func runWorkload(b *testing.B, path string, batch int, sink *discard) int64 {
	b.Helper()
	sink.events.Store(0)
	reg := pipeline.NewRegistry()
	file.Register(reg)
	decode.Register(reg)
	mapping.Register(reg)
	dedupe.Register(reg)
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := fmt.Sprintf(workloadPipeline, path, batch, batch)
	cfg, err := pipeline.Load("engine-file.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	p, err := pipeline.Build(context.Background(), cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	return sink.events.Load()
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

// workloadFile returns the path of a file of n workload events, writing it
// on first use (generation is outside the timer and deterministic).
func workloadFile(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-bench-engine-v1-%d.jsonl", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp, err := os.CreateTemp(os.TempDir(), "sluice-bench-engine-*.tmp")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	var line []byte
	for i := range n {
		line = appendWorkloadEvent(line[:0], i)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		b.Fatal(err)
	}
	return path
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson"}
	domains    = []string{"Example.COM", "Acme.io", "GMAIL.com", "Contoso.Org", "initech.NET"}
)

// appendWorkloadEvent appends event i: ~1 KB of JSON with a distinct id,
// an RFC 3339 time, a mixed-case email and nested CRM-like fields.
func appendWorkloadEvent(b []byte, i int) []byte {
	first, last := firstNames[i%len(firstNames)], lastNames[(i/8)%len(lastNames)]
	t := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	b = fmt.Appendf(b, `{"id":"evt-%09d","time":"%s","type":"contact.updated","source":"crm",`, i, t.Format(time.RFC3339Nano))
	b = fmt.Appendf(b, `"email":"%s.%s%d@%s","name":"%s %s","phone":"+1-555-%04d",`, first, last, i%1000, domains[i%len(domains)], first, last, i%10000)
	b = fmt.Appendf(b, `"account":{"id":"acc-%06d","name":"Account %d","plan":"pro","seats":%d,"mrr":%d.%02d,"active":%t},`, i%50000, i%50000, 1+i%250, i%9000, i%100, i%3 != 0)
	b = fmt.Appendf(b, `"address":{"street":"%d Market Street","city":"San Francisco","region":"CA","postal_code":"94%03d","country":"US"},`, 1+i%999, i%1000)
	b = fmt.Appendf(b, `"tags":["customer","tier-%d","region-west","newsletter"],"scores":[%d,%d,%d],`, i%4, i%100, (i*7)%100, (i*13)%100)
	b = fmt.Appendf(b, `"utm":{"source":"google","medium":"cpc","campaign":"winter-%d","term":"stream processing","content":"ad-%d"},`, i%12, i%37)
	b = fmt.Appendf(b, `"consent":{"email":true,"sms":false,"updated_at":"%s"},`, t.Add(-time.Hour).Format(time.RFC3339))
	b = append(b, `"notes":"Met at the conference; interested in the enterprise plan. Follow up after the \"Q1\" budget review, cc the account owner and the solutions engineer assigned to the region.",`...)
	b = fmt.Appendf(b, `"owner":{"id":"usr-%04d","email":"owner%d@acme.io","team":"sales-west"},"version":%d,"deleted":false,"extra":null}`, i%300, i%300, 1+i%20)
	return b
}

func TestWorkloadEventShape(t *testing.T) {
	for _, i := range []int{0, 1, 999_999} {
		ev := appendWorkloadEvent(nil, i)
		if len(ev) < 900 || len(ev) > 1100 {
			t.Errorf("event %d is %d bytes, want ~1 KB", i, len(ev))
		}
		e := pipeline.Event{Body: ev}
		if got, want := e.Get("id").String(), fmt.Sprintf("evt-%09d", i); got != want {
			t.Errorf("event %d id = %q, want %q", i, got, want)
		}
		if e.Get("email").String() == "" || !e.Get("time").Exists() {
			t.Errorf("event %d lacks email or time: %s", i, ev)
		}
	}
}
