package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redisconn"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
)

// testRedisStore opens a redisTokenStore on the test stack's Redis under a
// prefix of the test's own, deleting its keys when the test ends.
func testRedisStore(t *testing.T, prefix string) *redisTokenStore {
	t.Helper()
	addr := testenv.RedisAddr(t)
	if prefix == "" {
		prefix = RedisTestPrefix(t)
	}
	c := &RedisReplayStoreConfig{Config: redisconn.Config{Addr: addr}, Prefix: prefix}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := newRedisTokenStore(c, time.Minute, 9*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

// RedisTestPrefix is a key prefix no other test uses, on the test stack's
// Redis; its keys are deleted when the test ends. Exported for this
// package's external tests (it is compiled only into the test binary).
func RedisTestPrefix(t *testing.T) string {
	t.Helper()
	addr := testenv.RedisAddr(t)
	prefix := fmt.Sprintf("sluice-test:mailgun:%s:%d:", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("deleting test keys %s*: %v", prefix, err)
		}
	})
	return prefix
}

// steps drives a tokenStore, failing the test on a store error.
type steps struct {
	t *testing.T
	s tokenStore
}

func (x steps) reserve(token string, body [32]byte, signedAt time.Time, maxAge time.Duration, now time.Time) reserveResult {
	x.t.Helper()
	r, err := x.s.reserve(context.Background(), token, body, signedAt, maxAge, now)
	if err != nil {
		x.t.Fatalf("reserve %s: %v", token, err)
	}
	return r
}

func (x steps) settle(token string, ok bool, now time.Time, retryWindow time.Duration) {
	x.t.Helper()
	if err := x.s.settle(context.Background(), token, ok, now, retryWindow); err != nil {
		x.t.Fatalf("settle %s: %v", token, err)
	}
}

// The replay rules, the same for the memory set and the shared Redis store.
func TestReplaySet(t *testing.T) {
	const maxAge = 5 * time.Minute
	t0 := time.Unix(1_700_000_000, 0)
	body := sha256.Sum256([]byte("body"))
	other := sha256.Sum256([]byte("other"))
	stores := []struct {
		name string
		open func(t *testing.T) tokenStore
	}{
		{"memory", func(*testing.T) tokenStore { return newReplaySet(2) }},
		{"redis", func(t *testing.T) tokenStore { return testRedisStore(t, "") }},
	}
	for _, tc := range []struct {
		name       string
		memoryOnly bool // replay_capacity: the Redis store has none
		steps      func(r steps) []reserveResult
		want       []reserveResult
	}{
		{"fresh token once", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", true, t0, time.Hour)
			return []reserveResult{a, r.reserve("t", body, t0, maxAge, t0.Add(time.Minute))}
		}, []reserveResult{reserved, replayed}},
		{"in flight is a replay", false, func(r steps) []reserveResult {
			return []reserveResult{r.reserve("t", body, t0, maxAge, t0), r.reserve("t", body, t0, maxAge, t0)}
		}, []reserveResult{reserved, replayed}},
		{"stale either way", false, func(r steps) []reserveResult {
			return []reserveResult{r.reserve("a", body, t0, maxAge, t0.Add(maxAge+time.Second)), r.reserve("b", body, t0.Add(maxAge+time.Second), maxAge, t0)}
		}, []reserveResult{stale, stale}},
		{"failed: identical stale retry accepted, other body not", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			later := t0.Add(30 * time.Minute)
			return []reserveResult{a, r.reserve("t", other, t0, maxAge, later), r.reserve("t", body, t0, maxAge, later)}
		}, []reserveResult{reserved, replayed, reserved}},
		{"failed retry is in flight, then used", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			later := t0.Add(30 * time.Minute)
			b := r.reserve("t", body, t0, maxAge, later)
			c := r.reserve("t", body, t0, maxAge, later) // while the retry is in flight
			r.settle("t", true, later, time.Hour)
			return []reserveResult{a, b, c, r.reserve("t", body, t0, maxAge, later.Add(time.Minute))}
		}, []reserveResult{reserved, reserved, replayed, replayed}},
		{"failed twice: retry_window runs from the last failure", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			b := r.reserve("t", body, t0, maxAge, t0.Add(50*time.Minute))
			r.settle("t", false, t0.Add(50*time.Minute), time.Hour)
			return []reserveResult{a, b, r.reserve("t", body, t0, maxAge, t0.Add(100*time.Minute))}
		}, []reserveResult{reserved, reserved, reserved}},
		{"failed retry past retry_window is stale", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", false, t0, time.Hour)
			return []reserveResult{a, r.reserve("t", body, t0, maxAge, t0.Add(2*time.Hour))}
		}, []reserveResult{reserved, stale}},
		{"used token past max_age is stale, not replayed", false, func(r steps) []reserveResult {
			a := r.reserve("t", body, t0, maxAge, t0)
			r.settle("t", true, t0, time.Hour)
			return []reserveResult{a, r.reserve("t", body, t0, maxAge, t0.Add(maxAge+2*time.Second))}
		}, []reserveResult{reserved, stale}},
		{"full of live tokens fails closed, expired ones are swept", true, func(r steps) []reserveResult {
			a := r.reserve("a", body, t0, maxAge, t0)
			b := r.reserve("b", body, t0, maxAge, t0)
			// Settled: an entry still in flight is kept past its expiry
			// for its settle (TestReplaySetKeepsInFlightForSettle).
			r.settle("a", true, t0, time.Hour)
			r.settle("b", true, t0, time.Hour)
			c := r.reserve("c", body, t0, maxAge, t0.Add(time.Minute))
			d := r.reserve("d", body, t0.Add(maxAge), maxAge, t0.Add(maxAge+2*time.Second))
			return []reserveResult{a, b, c, d}
		}, []reserveResult{reserved, reserved, replayFull, reserved}},
	} {
		for _, st := range stores {
			if tc.memoryOnly && st.name != "memory" {
				continue
			}
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				got := tc.steps(steps{t, st.open(t)})
				for i := range tc.want {
					if got[i] != tc.want[i] {
						t.Fatalf("step %d: %v, want %v (all %v)", i, got[i], tc.want[i], got)
					}
				}
			})
		}
	}
}

// Two replicas' stores on one prefix are one set of tokens: of many
// concurrent first deliveries of a token exactly one is reserved, and a
// failed request's identical retry is reserved by exactly one.
func TestRedisTokenStoreShared(t *testing.T) {
	prefix := RedisTestPrefix(t)
	a, b := testRedisStore(t, prefix), testRedisStore(t, prefix)
	now := time.Now()
	body := sha256.Sum256([]byte("body"))
	race := func(token string, signedAt time.Time) int {
		var mu sync.Mutex
		var wg sync.WaitGroup
		n := 0
		for i := range 16 {
			s := tokenStore(a)
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				r, err := s.reserve(context.Background(), token, body, signedAt, 5*time.Minute, now.Add(20*time.Minute))
				if err != nil {
					t.Error(err)
				}
				if r == reserved {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return n
	}
	if n := race("fresh", now.Add(20*time.Minute)); n != 1 {
		t.Fatalf("fresh token reserved %d times, want 1", n)
	}
	sa := steps{t, a}
	if got := sa.reserve("failed", body, now, 5*time.Minute, now); got != reserved {
		t.Fatal(got)
	}
	sa.settle("failed", false, now, time.Hour)
	if n := race("failed", now); n != 1 {
		t.Fatalf("failed request's retry reserved %d times, want 1", n)
	}
}

// Every key has a server-side TTL: the entry's expiry plus the linger, or
// retry_window plus the linger once its request failed.
func TestRedisTokenStoreTTLs(t *testing.T) {
	s := testRedisStore(t, "")
	ctx := context.Background()
	now := time.Now()
	body := sha256.Sum256([]byte("body"))
	ttl := func(token string) time.Duration {
		t.Helper()
		d, err := s.rdb.PTTL(ctx, s.prefix+token).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	near := func(token string, want time.Duration) {
		t.Helper()
		if got := ttl(token); got > want || got < want-5*time.Second {
			t.Fatalf("%s: TTL %v, want about %v", token, got, want)
		}
	}
	r := steps{t, s}
	r.reserve("fresh", body, now.Add(-time.Minute), 5*time.Minute, now)
	near("fresh", 15*time.Minute+time.Second+s.linger) // 3×max_age + 1 s + linger, whatever the caller's clock
	r.settle("fresh", true, now, 9*time.Hour)
	near("fresh", 15*time.Minute+time.Second+s.linger)
	r.reserve("failed", body, now, 5*time.Minute, now)
	r.settle("failed", false, now, 9*time.Hour)
	near("failed", 9*time.Hour+s.linger)
	// The identical retry (an hour later by the caller's clock) keeps it;
	// its failure restarts it from then.
	r.reserve("failed", body, now, 5*time.Minute, now.Add(time.Hour))
	near("failed", 9*time.Hour+s.linger)
	r.settle("failed", false, now.Add(time.Hour), 9*time.Hour)
	near("failed", 9*time.Hour+s.linger)
	if v, err := s.rdb.Get(ctx, s.prefix+"failed").Result(); err != nil || !strings.HasSuffix(v, ":"+ms(now.Add(10*time.Hour))) {
		t.Fatalf("failed entry %q (%v), want it to expire at now+10h", v, err)
	}
	// Rejections write nothing.
	r.reserve("stale", body, now.Add(-time.Hour), 5*time.Minute, now)
	if n, err := s.rdb.Exists(ctx, s.prefix+"stale").Result(); err != nil || n != 0 {
		t.Fatalf("stale token stored: %d, %v", n, err)
	}
	// A value this store did not write is taken as a replay: fail closed.
	if err := s.rdb.Set(ctx, s.prefix+"odd", "something else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.reserve("odd", body, now, 5*time.Minute, now); got != replayed {
		t.Fatalf("unknown value: %v, want replayed", got)
	}
}

// A Redis that cannot be reached is an error, never an answer.
func TestRedisTokenStoreDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &RedisReplayStoreConfig{Config: redisconn.Config{Addr: addr, Timeout: pipeline.Duration(200 * time.Millisecond)}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := newRedisTokenStore(c, time.Minute, 9*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	ctx := context.Background()
	now := time.Now()
	if _, err := s.reserve(ctx, "t", sha256.Sum256(nil), now, time.Minute, now); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("reserve: %v, want an error naming %s", err, addr)
	}
	if err := s.settle(ctx, "t", false, now, time.Hour); err == nil {
		t.Fatal("settle: no error")
	}
	if err := s.ping(ctx); err == nil {
		t.Fatal("ping: no error")
	}
}

// TestRedisTokenStoreClockSkew: a replica whose clock runs ahead must not
// make the shared entry vanish while the signature is still fresh to the
// others (the key's TTL once followed the reserving replica's clock).
func TestRedisTokenStoreClockSkew(t *testing.T) {
	s := testRedisStore(t, "")
	s.linger = 100 * time.Millisecond
	ctx := context.Background()
	body := sha256.Sum256([]byte("body"))
	signed := time.Now()
	// A freshness window far longer than the pause below, so the signature
	// is still fresh to B however slow the machine; the bug kept the key
	// only for A's remaining window (≈ linger here).
	const window = 20 * time.Second
	ahead := signed.Add(window) // replica A's clock
	if r, err := s.reserve(ctx, "tok", body, signed, window, ahead); err != nil || r != reserved {
		t.Fatalf("A: %v %v", r, err)
	}
	if err := s.settle(ctx, "tok", true, ahead, time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	// Replica B, clock right: the signature is still fresh to it.
	if r, err := s.reserve(ctx, "tok", sha256.Sum256([]byte("forged")), signed, window, time.Now()); err != nil || r != replayed {
		t.Fatalf("B: %v %v, want replayed", r, err)
	}
}

// TestRedisTokenStoreRelease: a reserve whose answer was lost leaves the
// token in flight; release turns it into a failed entry, so the
// provider's identical retry (stale by then) is admitted and another body
// is not.
func TestRedisTokenStoreRelease(t *testing.T) {
	s := testRedisStore(t, "")
	ctx := context.Background()
	body := sha256.Sum256([]byte("body"))
	now := time.Now()
	r := steps{t, s}
	r.reserve("lost", body, now, 5*time.Minute, now)
	if err := s.release(ctx, "lost", hex.EncodeToString(body[:]), tokenExpiry(now, 5*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	if got, err := s.reserve(ctx, "lost", sha256.Sum256([]byte("other")), now, 5*time.Minute, later); err != nil || got != replayed {
		t.Fatalf("another body: %v %v, want replayed", got, err)
	}
	if got, err := s.reserve(ctx, "lost", body, now, 5*time.Minute, later); err != nil || got != reserved {
		t.Fatalf("the identical retry: %v %v, want reserved", got, err)
	}
	// Release touches only the entry it reserved.
	other := sha256.Sum256([]byte("other"))
	if err := s.release(ctx, "lost", hex.EncodeToString(other[:]), tokenExpiry(now, 5*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.rdb.Get(ctx, s.prefix+"lost").Result(); !strings.HasPrefix(v, "inflight:") {
		t.Fatalf("entry %q after a release by another body, want it still in flight", v)
	}
}

// TestReplaySetKeepsInFlightForSettle: a sweep while a request waits for
// its ack must not drop its entry, or its failure could not be recorded
// and Mailgun's identical (stale) retry would be refused.
func TestReplaySetKeepsInFlightForSettle(t *testing.T) {
	r := newReplaySet(10)
	ctx := context.Background()
	body := sha256.Sum256([]byte("body"))
	signed := time.Now()
	if got, _ := r.reserve(ctx, "slow", body, signed, time.Second, signed); got != reserved {
		t.Fatalf("reserve: %v", got)
	}
	late := signed.Add(30 * time.Second) // past the entry's expiry, before its ack
	r.sweep(late)
	if err := r.settle(ctx, "slow", false, late, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.reserve(ctx, "slow", body, signed, time.Second, late.Add(time.Minute)); got != reserved {
		t.Fatalf("the identical retry after a failure: %v, want reserved", got)
	}
}
