// Package dedupe drops events whose key was already seen within a window.
//
// A key is remembered as seen only once the batch that carried it settled
// successfully (pipeline.Settler): a write that fails and is redelivered is
// not dropped as a duplicate of itself. Between Apply and Settle a key is
// pending: further copies of it, in the same batch or in a concurrent one,
// are dropped too, so two copies never both pass.
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/redisconn"
	"github.com/sluicehq/sluice/pipeline"
)

// Config is the `dedupe` transform's YAML.
type Config struct {
	// Key lists the body paths whose values make up the dedupe key; empty
	// means the event ID.
	Key []string `yaml:"key"`
	// Window is how long a key stays seen after its event was stored.
	Window pipeline.Duration `yaml:"window"`
	// Capacity bounds the keys the memory store remembers (seen and
	// pending); the oldest go first when it is full.
	Capacity int `yaml:"capacity"`
	// Store is memory (per replica) or redis (shared by all replicas).
	Store string `yaml:"store" enum:"memory,redis"`
	// Redis configures store: redis.
	Redis RedisConfig `yaml:"redis"`
}

// RedisConfig is where store: redis keeps keys: addr, username, password,
// db, timeout (one pipelined round trip) and prefix.
type RedisConfig struct {
	redisconn.Config `yaml:",inline"`
	// Prefix is prepended to every key; default "sluice:dedupe:<pipeline>:".
	Prefix string `yaml:"prefix"`
}

// SetDefaults fills the defaults.
func (c *Config) SetDefaults() {
	c.Window = pipeline.Duration(10 * time.Minute)
	c.Capacity = 1_000_000
	c.Store = "memory"
	c.Redis.Timeout = pipeline.Duration(2 * time.Second)
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, pipeline.FieldErrorf("window", "must be positive; got %s", c.Window))
	}
	for i, k := range c.Key {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, pipeline.FieldErrorf(fmt.Sprintf("key[%d]", i), "must be a field path"))
		}
	}
	switch c.Store {
	case "memory":
		if c.Capacity <= 0 {
			errs = append(errs, pipeline.FieldErrorf("capacity", "must be positive; got %d", c.Capacity))
		}
	case "redis":
		errs = append(errs, c.Redis.Check("redis.")...)
	default:
		errs = append(errs, pipeline.FieldErrorf("store", "must be memory or redis; got %q", c.Store))
	}
	return errors.Join(errs...)
}

// Register adds the dedupe transform to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterTransform(r, "dedupe", "drop events whose key was seen within a window (memory or redis)", func(bc pipeline.BuildContext, c *Config) (pipeline.Transform, error) {
		return New(bc, *c)
	})
}

// Dedupe is the transform.
type Dedupe struct {
	cfg Config
	// local remembers keys stored by this replica (all of them with
	// store: memory; with store: redis, a cache in front of Redis that
	// also covers marks still on their way to it).
	local *memoryStore
	// remote is the window shared by all replicas; nil with store: memory.
	remote  *redisStore
	log     *slog.Logger
	dropped prometheus.Counter
	now     func() time.Time

	mu sync.Mutex
	// pending counts copies passed on per key and not settled yet.
	pending map[string]int
	// inflight remembers the key each passed-on event was deduped under
	// (and its fingerprint, hashed once), so Settle does not depend on
	// later transforms leaving it alone.
	inflight map[*pipeline.Event]inflightKey
}

type inflightKey struct {
	key string
	fp  fingerprint
}

// New builds a dedupe transform for c.
func New(bc pipeline.BuildContext, c Config) (*Dedupe, error) {
	d := &Dedupe{
		cfg:      c,
		log:      bc.Logger,
		now:      time.Now,
		pending:  make(map[string]int),
		inflight: make(map[*pipeline.Event]inflightKey),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_dedupe_dropped_total", Help: "Events dropped as duplicates of an event seen within the window or in flight."}),
	}
	if err := bc.Metrics.Register(d.dropped); err != nil {
		return nil, err
	}
	switch c.Store {
	case "redis":
		prefix := c.Redis.Prefix
		if prefix == "" {
			prefix = "sluice:dedupe:" + bc.Pipeline + ":"
		}
		remote, err := newRedisStore(c.Redis, prefix, c.Window.D(), d.log)
		if err != nil {
			return nil, fmt.Errorf("dedupe: %w", err)
		}
		d.remote = remote
	}
	d.local = newMemoryStore(c.Capacity, c.Window.D(), func() time.Time { return d.now() })
	return d, nil
}

// Close releases the store.
func (d *Dedupe) Close(context.Context) error {
	if d.remote != nil {
		return d.remote.close()
	}
	return nil
}

// key computes ev's dedupe key. A single path or the event ID costs no
// allocation beyond what gjson returns.
func (d *Dedupe) key(ev *pipeline.Event, buf *strings.Builder) string {
	switch len(d.cfg.Key) {
	case 0:
		return ev.ID
	case 1:
		return ev.Get(d.cfg.Key[0]).String()
	}
	buf.Reset()
	for i, p := range d.cfg.Key {
		if i > 0 {
			buf.WriteByte(0x1f) // unit separator: cannot clash with field text boundaries
		}
		buf.WriteString(ev.Get(p).String())
	}
	return buf.String()
}

// Apply drops events whose key is seen or pending and marks the others
// pending. A store failure fails the whole batch, retryably.
func (d *Dedupe) Apply(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	if len(in) == 0 {
		return in, nil
	}
	keys := make([]string, len(in))
	fps := make([]fingerprint, len(in))
	var sb strings.Builder
	for i, ev := range in {
		keys[i] = d.key(ev, &sb)
		fps[i] = d.local.fingerprint(keys[i])
	}
	seen := make([]bool, len(in))
	if d.remote != nil {
		if err := d.remote.seen(ctx, keys, seen); err != nil {
			return nil, fmt.Errorf("dedupe: %w", err)
		}
	}
	var out []*pipeline.Event // nil until the first drop: then a copy
	dropped := 0
	// The local store is checked under the lock Settle marks under: a
	// remote answer may predate a batch that settled meanwhile, the local
	// store and the pending set cannot.
	now := d.now().UnixNano()
	d.mu.Lock()
	for i, ev := range in {
		k := keys[i]
		if seen[i] || d.pending[k] > 0 || d.local.hasFingerprint(fps[i], now) {
			if out == nil {
				out = make([]*pipeline.Event, i, len(in))
				copy(out, in[:i])
			}
			dropped++
			continue
		}
		d.pending[k]++
		d.inflight[ev] = inflightKey{key: k, fp: fps[i]}
		if out != nil {
			out = append(out, ev)
		}
	}
	d.mu.Unlock()
	if dropped == 0 {
		return in, nil
	}
	d.dropped.Add(float64(dropped))
	return out, nil
}

// Settle moves the keys of events stored (err nil) from pending to seen,
// and forgets the keys of events that will be redelivered.
func (d *Dedupe) Settle(events []*pipeline.Event, err error) {
	if len(events) == 0 {
		return
	}
	var stored []string
	var storedFP []fingerprint
	if err == nil {
		storedFP = make([]fingerprint, 0, len(events))
		if d.remote != nil {
			stored = make([]string, 0, len(events))
		}
	}
	d.mu.Lock()
	for _, ev := range events {
		in, ok := d.inflight[ev]
		if !ok {
			continue
		}
		k := in.key
		delete(d.inflight, ev)
		if err == nil {
			storedFP = append(storedFP, in.fp)
			if d.remote != nil {
				stored = append(stored, k)
			}
		}
		if d.pending[k] <= 1 {
			delete(d.pending, k)
		} else {
			d.pending[k]--
		}
	}
	// Marked before the lock is released: no Apply may find a key
	// neither pending nor seen in between.
	if len(storedFP) > 0 {
		d.local.markFingerprints(storedFP)
		if d.remote != nil {
			d.remote.mark(stored)
		}
	}
	d.mu.Unlock()
}

// deadLetterPrefix keeps written dead letters apart from event keys in the
// same store.
const deadLetterPrefix = "dead_letter\x1f"

// DeadLettersWritten reports which dead letters were written within the
// window (pipeline.DeadLetterMemory): by this replica, or with store: redis
// by any. A Redis error is returned (the runner then writes them all).
func (d *Dedupe) DeadLettersWritten(ctx context.Context, keys []string, written []bool) error {
	prefixed := make([]string, len(keys))
	for i, k := range keys {
		prefixed[i] = deadLetterPrefix + k
	}
	now := d.now().UnixNano()
	var ask []string
	var at []int
	for i, k := range prefixed {
		if d.local.hasFingerprint(d.local.fingerprint(k), now) {
			written[i] = true
			continue
		}
		ask, at = append(ask, k), append(at, i)
	}
	if d.remote == nil || len(ask) == 0 {
		return nil
	}
	seen := make([]bool, len(ask))
	if err := d.remote.seen(ctx, ask, seen); err != nil {
		return fmt.Errorf("dedupe: dead letters written: %w", err)
	}
	for j, i := range at {
		written[i] = seen[j]
	}
	return nil
}

// MarkDeadLetters remembers, for the window, that these dead letters were
// written: the runner calls it only once their write completed.
func (d *Dedupe) MarkDeadLetters(keys []string) {
	prefixed := make([]string, len(keys))
	for i, k := range keys {
		prefixed[i] = deadLetterPrefix + k
	}
	d.local.mark(prefixed)
	if d.remote != nil {
		d.remote.mark(prefixed)
	}
}
