package dedupe

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStore keeps seen keys in Redis, shared by every replica: SET NX PX
// window marks a key, pipelined per settled batch; one MGET per batch
// checks a batch's keys. Marks are written in the background (Settle must
// not block); until a mark is in Redis the key stays in writing, which this
// replica checks first.
type redisStore struct {
	rdb     *redis.Client
	prefix  string
	window  time.Duration
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	writing map[string]int // keys marked but not yet confirmed by Redis
	queue   []string
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

func newRedisStore(c RedisConfig, prefix string, window time.Duration, log *slog.Logger) *redisStore {
	s := &redisStore{
		rdb: redis.NewClient(&redis.Options{
			Addr: c.Addr, Username: c.Username, Password: c.Password, DB: c.DB,
			ReadTimeout: c.Timeout, WriteTimeout: c.Timeout,
		}),
		prefix: prefix, window: window, timeout: c.Timeout, log: log,
		writing: make(map[string]int),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.writer()
	return s
}

func (s *redisStore) seen(ctx context.Context, keys []string, out []bool) error {
	rkeys := make([]string, 0, len(keys))
	idx := make([]int, 0, len(keys))
	s.mu.Lock()
	for i, k := range keys {
		if s.writing[k] > 0 {
			out[i] = true
			continue
		}
		rkeys = append(rkeys, s.prefix+k)
		idx = append(idx, i)
	}
	s.mu.Unlock()
	if len(rkeys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	vals, err := s.rdb.MGet(ctx, rkeys...).Result()
	if err != nil {
		return err
	}
	for j, v := range vals {
		if v != nil {
			out[idx[j]] = true
		}
	}
	return nil
}

func (s *redisStore) mark(keys []string) {
	s.mu.Lock()
	for _, k := range keys {
		s.writing[k]++
	}
	s.queue = append(s.queue, keys...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writer sends queued marks, one pipeline per wake-up, retrying a failed
// pipeline until the window would have passed anyway.
func (s *redisStore) writer() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
		case <-s.done:
			s.flush(true)
			return
		}
		s.flush(false)
	}
}

func (s *redisStore) flush(final bool) {
	s.mu.Lock()
	keys := s.queue
	s.queue = nil
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	deadline := time.Now().Add(s.window)
	backoff := 50 * time.Millisecond
	for {
		err := s.write(keys)
		if err == nil {
			break
		}
		if final || time.Now().After(deadline) {
			s.log.Error("dedupe: could not record seen keys in redis; their duplicates may pass", "keys", len(keys), "err", err)
			break
		}
		s.log.Warn("dedupe: recording seen keys in redis failed; retrying", "keys", len(keys), "err", err)
		select {
		case <-time.After(backoff):
		case <-s.done:
			final = true
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	s.mu.Lock()
	for _, k := range keys {
		if s.writing[k] <= 1 {
			delete(s.writing, k)
		} else {
			s.writing[k]--
		}
	}
	s.mu.Unlock()
}

func (s *redisStore) write(keys []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.SetNX(ctx, s.prefix+k, 1, s.window)
		}
		return nil
	})
	return err
}

// idle reports whether every mark reached Redis (for tests).
func (s *redisStore) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writing) == 0 && len(s.queue) == 0
}

func (s *redisStore) close() error {
	close(s.done)
	<-s.stopped
	return s.rdb.Close()
}
