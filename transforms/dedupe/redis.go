package dedupe

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redisconn"
)

// redisStore keeps seen keys in Redis, shared by every replica: SET NX PX
// window marks a key, pipelined per settled batch; one MGET per batch
// checks a batch's keys. Marks are written in the background (Settle must
// not block); meanwhile the replica's local store answers for them.
type redisStore struct {
	rdb     *redis.Client
	prefix  string
	window  time.Duration
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	writing int // marks taken off the queue, not yet answered by Redis
	queue   []string
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

func newRedisStore(c RedisConfig, prefix string, window time.Duration, log *slog.Logger) (*redisStore, error) {
	opts, err := redisconn.Options(c.Config, nil)
	if err != nil {
		return nil, err
	}
	s := &redisStore{
		rdb:    redis.NewClient(opts),
		prefix: prefix, window: window, timeout: c.Timeout.D(), log: log,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.writer()
	return s, nil
}

func (s *redisStore) seen(ctx context.Context, keys []string, out []bool) error {
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = s.prefix + k
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	vals, err := s.rdb.MGet(ctx, rkeys...).Result()
	if err != nil {
		return err
	}
	for i, v := range vals {
		if v != nil {
			out[i] = true
		}
	}
	return nil
}

func (s *redisStore) mark(keys []string) {
	s.mu.Lock()
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
	s.writing += len(keys)
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
	s.writing -= len(keys)
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
	return s.writing == 0 && len(s.queue) == 0
}

func (s *redisStore) close() error {
	close(s.done)
	<-s.stopped
	return s.rdb.Close()
}
