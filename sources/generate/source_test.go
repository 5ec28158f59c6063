package generate

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func testConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

func TestSourceCountStopsWithEOF(t *testing.T) {
	tests := []struct {
		count, batch int
	}{
		{1, 500},
		{1234, 100},
		{1000, 100},
		{7, 3},
	}
	for _, tt := range tests {
		c := testConfig()
		c.Count, c.BatchSize = int64(tt.count), tt.batch
		s := newSource(t, c)
		total, reads := 0, 0
		ids := map[string]bool{}
		for {
			batch, ack, err := s.Read(context.Background())
			if errors.Is(err, io.EOF) {
				if len(batch) != 0 {
					t.Errorf("count %d: EOF came with %d events", tt.count, len(batch))
				}
				break
			}
			if err != nil {
				t.Fatalf("count %d: Read: %v", tt.count, err)
			}
			reads++
			if len(batch) == 0 || len(batch) > tt.batch {
				t.Fatalf("count %d: batch of %d events, want 1..%d", tt.count, len(batch), tt.batch)
			}
			if ack == nil {
				t.Fatalf("count %d: nil ack with a batch", tt.count)
			}
			ack(nil)
			for _, ev := range batch {
				ids[ev.ID] = true
			}
			total += len(batch)
			if total > tt.count {
				t.Fatalf("count %d: already got %d events", tt.count, total)
			}
		}
		if total != tt.count {
			t.Errorf("count %d: got %d events", tt.count, total)
		}
		if want := (tt.count + tt.batch - 1) / tt.batch; reads != want {
			t.Errorf("count %d batch %d: %d reads, want %d", tt.count, tt.batch, reads, want)
		}
		if len(ids) == 0 || len(ids) > tt.count {
			t.Errorf("count %d: %d distinct ids", tt.count, len(ids))
		}
		// Exhausted stays exhausted.
		if _, _, err := s.Read(context.Background()); !errors.Is(err, io.EOF) {
			t.Errorf("count %d: Read after EOF = %v, want io.EOF", tt.count, err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestSourceUnlimitedReturnsFullBatches(t *testing.T) {
	c := testConfig()
	c.BatchSize = 64
	s := newSource(t, c)
	for i := 0; i < 5; i++ {
		batch, _, err := s.Read(context.Background())
		if err != nil || len(batch) != 64 {
			t.Fatalf("read %d: %d events, err %v; want 64", i, len(batch), err)
		}
	}
}

func TestSourceEventsSurviveLaterReads(t *testing.T) {
	// Events of one batch stay intact while the next batches are generated
	// (the runner holds several batches in flight).
	c := testConfig()
	c.BatchSize, c.Duplicates = 50, 0.2
	s := newSource(t, c)
	first, _, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := make([]string, len(first))
	for i, ev := range first {
		saved[i] = string(ev.Payload) + "|" + string(ev.Key)
	}
	for i := 0; i < 20; i++ {
		if _, _, err := s.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range first {
		if got := string(ev.Payload) + "|" + string(ev.Key); got != saved[i] {
			t.Fatalf("event %d of the first batch changed after later reads", i)
		}
	}
}

func TestSourceRateWaitsWhenNothingIsDue(t *testing.T) {
	c := testConfig()
	c.Rate = &pipeline.Rate{PerSecond: 1.0 / 3600} // one an hour
	s := newSource(t, c)
	var waits []time.Duration
	stop := errors.New("stop waiting")
	s.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return stop
	}
	batch, _, err := s.Read(context.Background())
	if !errors.Is(err, stop) {
		t.Fatalf("Read = %d events, %v; want the sleep error", len(batch), err)
	}
	if len(batch) != 0 || s.gen.Emitted() != 0 {
		t.Errorf("generated %d events before any was due", s.gen.Emitted())
	}
	if len(waits) != 1 || waits[0] <= 0 {
		t.Errorf("sleep calls %v, want one positive wait", waits)
	}
}

func TestSourceRateCancelledContext(t *testing.T) {
	c := testConfig()
	c.Rate = &pipeline.Rate{PerSecond: 1.0 / 3600}
	s := newSource(t, c) // real sleep
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read on a cancelled context = %v, want context.Canceled", err)
	}
}

func TestSourceRateBacklogCappedAtBatchSize(t *testing.T) {
	c := testConfig()
	c.Rate = &pipeline.Rate{PerSecond: 100}
	c.BatchSize = 37
	s := newSource(t, c)
	s.started = time.Now().Add(-time.Hour) // 360,000 events are due
	s.sleep = func(context.Context, time.Duration) error {
		t.Error("slept although events were due")
		return errors.New("unexpected sleep")
	}
	for i := 0; i < 3; i++ {
		batch, _, err := s.Read(context.Background())
		if err != nil || len(batch) != 37 {
			t.Fatalf("read %d: %d events, err %v; want a full batch of 37", i, len(batch), err)
		}
	}
}

func TestSourceRateWithCount(t *testing.T) {
	// A short real rate: counts must come out right, whatever the timing.
	c := testConfig()
	c.Rate = &pipeline.Rate{PerSecond: 20000}
	c.Count, c.BatchSize = 300, 50
	s := newSource(t, c)
	sleeps := 0
	s.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps++
		return pipeline.Sleep(ctx, d)
	}
	total := 0
	for {
		batch, _, err := s.Read(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 || len(batch) > 50 {
			t.Fatalf("batch of %d events, want 1..50", len(batch))
		}
		total += len(batch)
	}
	if total != 300 {
		t.Errorf("got %d events, want 300", total)
	}
	t.Logf("%d sleeps", sleeps)
}

func generateRegistry() *pipeline.Registry {
	r := pipeline.NewRegistry()
	Register(r)
	pipeline.RegisterSink(r, "discard", "test sink", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) {
		return nil, errors.New("not built in tests")
	})
	return r
}

func TestConfigThroughLoad(t *testing.T) {
	load := func(body string) (*pipeline.Config, error) {
		yaml := "name: gen\nsource:\n  generate:\n" + body + "sinks:\n  - discard:\n"
		return pipeline.Load("gen.yaml", []byte(yaml), generateRegistry(), func(string) (string, bool) { return "", false })
	}

	t.Run("a mix names the families it wants", func(t *testing.T) {
		for _, tc := range []struct {
			yaml string
			want Mix
		}{
			{"    count: 1\n", DefaultMix()},
			{"    count: 1\n    mix: {email: 1}\n", Mix{Email: 1}},
			{"    count: 1\n    mix: {crm: 2, ats: 1}\n", Mix{CRM: 2, ATS: 1}},
		} {
			cfg, err := load(tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Source.Config.(*Config).Workload().Mix; got != tc.want {
				t.Errorf("%q: mix %+v, want %+v", tc.yaml, got, tc.want)
			}
		}
	})
	t.Run("defaults and values", func(t *testing.T) {
		cfg, err := load("    rate: 200000/min\n    count: 20000\n    mix: {crm: 1, ats: 0, email: 0}\n    max_size: 8KiB\n")
		if err != nil {
			t.Fatal(err)
		}
		c, ok := cfg.Source.Config.(*Config)
		if !ok {
			t.Fatalf("source config is %T", cfg.Source.Config)
		}
		if c.Rate == nil || c.Rate.PerSecond < 3333.33 || c.Rate.PerSecond > 3333.34 {
			t.Errorf("rate = %+v, want 3333.3/s", c.Rate)
		}
		if c.Count != 20000 || c.Mix == nil || *c.Mix != (Mix{CRM: 1}) || c.MaxSize != 8192 {
			t.Errorf("values not decoded: %+v", c)
		}
		if c.Duplicates != 0.02 || c.BatchSize != 500 || c.MinSize != 512 || c.Seed != 1 || c.Entities != 10000 || c.Accounts != 200 {
			t.Errorf("defaults not kept: %+v", c)
		}
	})

	tests := []struct {
		body  string
		paths []string
		line  int // line of the first error
	}{
		{"    count: -1\n", []string{"source.generate.count"}, 4},
		{"    duplicates: 1\n", []string{"source.generate.duplicates"}, 4},
		{"    duplicates: -0.1\n", []string{"source.generate.duplicates"}, 4},
		{"    poison: 1.5\n", []string{"source.generate.poison"}, 4},
		{"    mix: {crm: -1, ats: 1}\n", []string{"source.generate.mix.crm"}, 4},
		{"    mix: {crm: 0, ats: 0, email: 0}\n", []string{"source.generate.mix"}, 4},
		{"    entities: 0\n    accounts: -3\n", []string{"source.generate.entities", "source.generate.accounts"}, 4},
		{"    batch_size: 0\n", []string{"source.generate.batch_size"}, 4},
		{"    min_size: 100B\n", []string{"source.generate.min_size"}, 4},
		{"    min_size: 2KiB\n    max_size: 1KiB\n", []string{"source.generate.max_size"}, 5},
		{"    rate: fast\n", []string{"source.generate.rate"}, 4},
		{"    rate: 0/s\n", []string{"source.generate.rate"}, 4},
		{"    duplicate: 0.1\n", []string{"source.generate.duplicate"}, 4},
		{"    seed: -1\n", []string{"source.generate.seed"}, 4},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.body), func(t *testing.T) {
			cfg, err := load(tt.body)
			if err == nil {
				t.Fatalf("loaded %+v, want errors at %v", cfg.Source.Config, tt.paths)
			}
			var ces pipeline.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("error %T is not ConfigErrors: %v", err, err)
			}
			var got []string
			for _, ce := range ces {
				got = append(got, ce.Path)
				if ce.File != "gen.yaml" {
					t.Errorf("error without the file: %v", ce)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.paths, ",") {
				t.Errorf("error paths %v, want %v\n%v", got, tt.paths, err)
			}
			if ces[0].Line != tt.line {
				t.Errorf("first error on line %d, want %d: %v", ces[0].Line, tt.line, ces[0])
			}
		})
	}
}

func TestSourceFromConfigGeneratesValidEvents(t *testing.T) {
	c := testConfig()
	c.Count, c.Duplicates, c.Poison = 200, 0, 0
	c.Mix = &Mix{Email: 1}
	s := newSource(t, c)
	batch, _, err := s.Read(context.Background())
	if err != nil || len(batch) != 200 {
		t.Fatalf("%d events, %v", len(batch), err)
	}
	for i, ev := range batch {
		src := string(ev.Key[:strings.IndexByte(string(ev.Key), ':')])
		if src != "sendgrid" && src != "mailgun" && src != "ses" {
			t.Errorf("event %d: key %q is not an email vendor with mix email-only", i, ev.Key)
		}
		if ev.Time.IsZero() || ev.ID == "" {
			t.Errorf("event %d: missing time or id", i)
		}
	}
}

// newSource builds a generate source for a test, failing it on an error.
func newSource(tb testing.TB, c Config) *Source {
	tb.Helper()
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
