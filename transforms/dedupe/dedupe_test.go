package dedupe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

func ev(id string, body string) *pipeline.Event {
	e := &pipeline.Event{ID: id, Payload: []byte(body)}
	if body != "" {
		e.Body = e.Payload
	}
	return e
}

func ids(evs []*pipeline.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newMemory(t *testing.T, c Config) (*Dedupe, *clock) {
	t.Helper()
	full := Config{}
	full.SetDefaults()
	if c.Window != 0 {
		full.Window = c.Window
	}
	if c.Capacity != 0 {
		full.Capacity = c.Capacity
	}
	full.Key = c.Key
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := New(pipelinetest.BuildContext(), full)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	d.now = clk.now
	t.Cleanup(func() { d.Close(context.Background()) })
	return d, clk
}

// step is one batch through the transform: what passes, then how the batch
// settles.
type step struct {
	in       []*pipeline.Event
	want     []string
	settle   error // the ack error; nil: stored
	advance  time.Duration
	noSettle bool
}

func runSteps(t *testing.T, d *Dedupe, clk *clock, steps []step) {
	t.Helper()
	for i, s := range steps {
		if clk != nil {
			clk.add(s.advance)
		}
		out, err := d.Apply(context.Background(), s.in)
		if err != nil {
			t.Fatalf("step %d: Apply: %v", i, err)
		}
		if got := ids(out); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: passed %v, want %v", i, got, s.want)
		}
		if !s.noSettle {
			d.Settle(out, s.settle)
		}
	}
}

var errWrite = errors.New("sink write failed")

func TestMemoryDedupe(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "copies within one batch: the first passes",
			steps: []step{
				{in: []*pipeline.Event{ev("a", ""), ev("b", ""), ev("a", ""), ev("a", "")}, want: []string{"a", "b"}},
			},
		},
		{
			name: "a stored key is dropped in a later batch",
			steps: []step{
				{in: []*pipeline.Event{ev("a", ""), ev("b", "")}, want: []string{"a", "b"}},
				{in: []*pipeline.Event{ev("b", ""), ev("c", "")}, want: []string{"c"}},
			},
		},
		{
			name: "a failed write is redelivered and passes again",
			steps: []step{
				{in: []*pipeline.Event{ev("a", ""), ev("b", "")}, want: []string{"a", "b"}, settle: errWrite},
				{in: []*pipeline.Event{ev("a", ""), ev("b", "")}, want: []string{"a", "b"}},
				{in: []*pipeline.Event{ev("a", "")}, want: []string{}},
			},
		},
		{
			name: "a key in flight in another batch is dropped",
			steps: []step{
				{in: []*pipeline.Event{ev("a", "")}, want: []string{"a"}, noSettle: true},
				{in: []*pipeline.Event{ev("a", ""), ev("b", "")}, want: []string{"b"}},
			},
		},
		{
			name: "the window expires",
			cfg:  Config{Window: pipeline.Duration(time.Minute)},
			steps: []step{
				{in: []*pipeline.Event{ev("a", "")}, want: []string{"a"}},
				{in: []*pipeline.Event{ev("a", "")}, want: []string{}, advance: 59 * time.Second},
				{in: []*pipeline.Event{ev("a", "")}, want: []string{"a"}, advance: 2 * time.Second},
			},
		},
		{
			name: "key paths: same fields, different ids",
			cfg:  Config{Key: []string{"source", "data.email"}},
			steps: []step{
				{in: []*pipeline.Event{
					ev("1", `{"source":"hubspot","data":{"email":"a@x.io"}}`),
					ev("2", `{"source":"hubspot","data":{"email":"a@x.io"}}`),
					ev("3", `{"source":"salesforce","data":{"email":"a@x.io"}}`),
					ev("4", `{"source":"hubspot","data":{"email":"b@x.io"}}`),
				}, want: []string{"1", "3", "4"}},
			},
		},
		{
			name: "capacity evicts the oldest key",
			cfg:  Config{Capacity: 1}, // one entry per shard
			steps: func() []step {
				// Fill far beyond capacity; the first key must be forgotten.
				var s []step
				s = append(s, step{in: []*pipeline.Event{ev("k0", "")}, want: []string{"k0"}})
				for i := 1; i < 2000; i++ {
					id := fmt.Sprintf("k%d", i)
					s = append(s, step{in: []*pipeline.Event{ev(id, "")}, want: []string{id}})
				}
				return append(s, step{in: []*pipeline.Event{ev("k0", "")}, want: []string{"k0"}})
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, clk := newMemory(t, tt.cfg)
			runSteps(t, d, clk, tt.steps)
			drops := 0
			for _, s := range tt.steps {
				drops += len(s.in) - len(s.want)
			}
			if got := testutil.ToFloat64(d.dropped); got != float64(drops) {
				t.Errorf("sluice_dedupe_dropped_total = %v, want %d", got, drops)
			}
			if len(d.inflight) != 0 && !slices.ContainsFunc(tt.steps, func(s step) bool { return s.noSettle }) {
				t.Errorf("%d events still in flight after every batch settled", len(d.inflight))
			}
		})
	}
}

func TestMemoryStaysAtCapacity(t *testing.T) {
	d, _ := newMemory(t, Config{Capacity: 6400})
	batch := make([]*pipeline.Event, 100)
	for n := 0; n < 1000; n++ {
		for i := range batch {
			batch[i] = ev(fmt.Sprintf("e%d-%d", n, i), "")
		}
		out, err := d.Apply(context.Background(), batch)
		if err != nil || len(out) != len(batch) {
			t.Fatalf("batch %d: %d passed, err %v", n, len(out), err)
		}
		d.Settle(out, nil)
	}
	m := d.local
	if got := m.len(); got > 6400 {
		t.Fatalf("memory store holds %d keys, capacity 6400", got)
	}
	for i := range m.shards {
		if n, c := len(m.shards[i].fps), cap(m.shards[i].index); n != 100 || c != 256 {
			t.Fatalf("shard %d ring has %d entries and its index %d slots, want 100 and 256 as made", i, n, c)
		}
	}
}

// TestConcurrentBatchesPassEachKeyOnce applies and settles overlapping
// batches from 8 goroutines: every key passes exactly once, however Apply
// and Settle interleave (a remote answer that predates a settle included).
func TestConcurrentBatchesPassEachKeyOnce(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		d, clk := newMemory(t, Config{})
		d.now = clk.now
		concurrentOnce(t, d)
	})
	t.Run("redis", func(t *testing.T) {
		concurrentOnce(t, newRedis(t, fmt.Sprintf("sluice-test:%d:", time.Now().UnixNano())))
	})
}

func concurrentOnce(t *testing.T, d *Dedupe) {
	var mu sync.Mutex
	passed := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				batch := make([]*pipeline.Event, 10)
				for i := range batch {
					batch[i] = ev(fmt.Sprintf("k%d", (n*10+i)%500), "")
				}
				out, err := d.Apply(context.Background(), batch)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, e := range out {
					passed[e.ID]++
				}
				mu.Unlock()
				d.Settle(out, nil)
			}
		}()
	}
	wg.Wait()
	if len(passed) != 500 {
		t.Fatalf("%d distinct keys passed, want 500", len(passed))
	}
	for k, n := range passed {
		if n != 1 {
			t.Errorf("key %s passed %d times", k, n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"defaults are valid", func(*Config) {}, ""},
		{"zero window", func(c *Config) { c.Window = 0 }, "window"},
		{"unknown store", func(c *Config) { c.Store = "etcd" }, "store"},
		{"redis without addr", func(c *Config) { c.Store = "redis" }, "redis.addr"},
		{"empty key path", func(c *Config) { c.Key = []string{"id", " "} }, "key[1]"},
		{"zero capacity", func(c *Config) { c.Capacity = 0 }, "capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *pipeline.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate = %v, want a field error on %s", err, tt.field)
			}
		})
	}
}

func newRedis(t *testing.T, prefix string) *Dedupe {
	t.Helper()
	addr := testenv.RedisAddr(t)
	var c Config
	c.SetDefaults()
	c.Store = "redis"
	c.Window = pipeline.Duration(time.Minute)
	c.Redis.Addr = addr
	c.Redis.Prefix = prefix
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func waitIdle(t *testing.T, ds ...*Dedupe) {
	t.Helper()
	for _, d := range ds {
		testwait.ForEvery(t, 5*time.Millisecond, "marks to reach redis", d.remote.idle, nil)
	}
}

func TestRedisDedupe(t *testing.T) {
	prefix := fmt.Sprintf("sluice-test:%d:", time.Now().UnixNano())
	a := newRedis(t, prefix)
	b := newRedis(t, prefix) // a second replica sharing the window
	steps := []struct {
		d      *Dedupe
		in     []string
		want   []string
		settle error
	}{
		{a, []string{"x", "y", "x"}, []string{"x", "y"}, errWrite}, // write fails: forgotten
		{b, []string{"x", "y"}, []string{"x", "y"}, nil},           // redelivered to another replica after a rebalance
		{a, []string{"x", "z"}, []string{"z"}, nil},                // seen by b, shared through redis
		{b, []string{"z", "y"}, []string{}, nil},
	}
	for i, s := range steps {
		in := make([]*pipeline.Event, len(s.in))
		for j, id := range s.in {
			in[j] = ev(id, "")
		}
		out, err := s.d.Apply(context.Background(), in)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := ids(out); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: passed %v, want %v", i, got, s.want)
		}
		s.d.Settle(out, s.settle)
		waitIdle(t, a, b)
	}
	// The keys carry the window as their TTL.
	ttl, err := a.remote.rdb.PTTL(context.Background(), prefix+"x").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL = %v, %v; want within (0, 1m]", ttl, err)
	}
}

func TestRedisPendingBlocksUntilWritten(t *testing.T) {
	d := newRedis(t, fmt.Sprintf("sluice-test:%d:", time.Now().UnixNano()))
	out, err := d.Apply(context.Background(), []*pipeline.Event{ev("p", "")})
	if err != nil || len(out) != 1 {
		t.Fatalf("Apply: %v, %d", err, len(out))
	}
	// In flight: a concurrent copy is dropped before anything reached redis.
	out2, err := d.Apply(context.Background(), []*pipeline.Event{ev("p", "")})
	if err != nil || len(out2) != 0 {
		t.Fatalf("copy in flight passed: %v, %d", err, len(out2))
	}
	d.Settle(out, nil)
	// Right after Settle, whether or not the SET landed, the copy is dropped.
	out3, err := d.Apply(context.Background(), []*pipeline.Event{ev("p", "")})
	if err != nil || len(out3) != 0 {
		t.Fatalf("copy after settle passed: %v, %d", err, len(out3))
	}
}

func TestRedisDownIsRetryable(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.Store = "redis"
	c.Redis.Addr = "127.0.0.1:1"
	c.Redis.Timeout = pipeline.Duration(200 * time.Millisecond)
	d, err := New(pipeline.NewBuildContext("", "test", nil, nil), c)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	_, err = d.Apply(context.Background(), []*pipeline.Event{ev("a", "")})
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("Apply with redis down = %v, want a retryable error", err)
	}
	var be *pipeline.BatchError
	if errors.As(err, &be) {
		t.Fatalf("want a whole-batch error, got %v", err)
	}
	if len(d.inflight) != 0 {
		t.Fatalf("a failed Apply left %d events in flight", len(d.inflight))
	}
}
