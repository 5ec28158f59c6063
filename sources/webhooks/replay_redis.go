package webhooks

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/internal/redisconn"
)

// redisTokenStore is the tokenStore every replica shares: one Redis key per
// token, prefix+token, whose value is "<state>:<hex sha256 of the body>:<expires,
// unix ms>" with state inflight, used or failed — replaySet's entry. Each
// reserve and settle is one Lua script, so two replicas never both reserve
// a token.
//
// The expiry in the value is the entry's, as replaySet keeps it, checked
// against the caller's clock: a replica sees the entry expired only when it
// also sees the signature stale. The key's server-side TTL must not depend
// on the reserving replica's clock, or a replica running ahead would let
// the key vanish while the signature is still fresh to the others: a fresh
// entry's TTL is 3×max_age + 1 s + linger (linger: the longest a request
// takes from reserve to settle), which holds for clock differences up to
// max_age between replicas, and lets a settle find an entry whose expiry
// passed while its request waited for the ack. Nothing outlives that.
type redisTokenStore struct {
	rdb           *redis.Client
	addr          string
	prefix        string
	timeout       time.Duration
	linger        time.Duration
	retryWindow   time.Duration
	reserveScript *redis.Script
	settleScript  *redis.Script
	releaseScript *redis.Script
}

// releaseLua: KEYS[1] the token's key; ARGV: body hash, the reserved
// entry's expiry (ms), now+retry_window (ms) and its TTL (ms). It marks an
// entry this request reserved as failed, so the provider's identical retry
// is admitted; anything else is left alone. Returns 1 when it released.
const releaseLua = `
local v = redis.call('GET', KEYS[1])
if v == 'inflight:' .. ARGV[1] .. ':' .. ARGV[2] then
  redis.call('SET', KEYS[1], 'failed:' .. ARGV[1] .. ':' .. ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
`

// reserveLua: KEYS[1] the token's key; ARGV: body hash, now (ms), "1" when
// the signature is stale, the fresh entry's expiry (ms) and its TTL (ms).
// Returns a reserveResult: 0 reserved, 1 replayed, 2 stale.
const reserveLua = `
local v = redis.call('GET', KEYS[1])
if v then
  local state, hash, exp = string.match(v, '^(%l+):(%x+):(%d+)$')
  if not exp or tonumber(ARGV[2]) < tonumber(exp) then
    if state == 'failed' and hash == ARGV[1] then
      redis.call('SET', KEYS[1], 'inflight:' .. hash .. ':' .. exp, 'KEEPTTL')
      return 0
    end
    return 1
  end
end
if ARGV[3] == '1' then
  return 2
end
redis.call('SET', KEYS[1], 'inflight:' .. ARGV[1] .. ':' .. ARGV[4], 'PX', ARGV[5])
return 0
`

// settleLua: KEYS[1] the token's key; ARGV: "1" when the events were
// written, now+retry_window (ms) and the TTL (ms) that expiry needs.
// Returns 1 when there was an entry to settle.
const settleLua = `
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
local state, hash, exp = string.match(v, '^(%l+):(%x+):(%d+)$')
if not exp then
  return 0
end
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], 'used:' .. hash .. ':' .. exp, 'KEEPTTL')
elseif tonumber(ARGV[2]) > tonumber(exp) then
  redis.call('SET', KEYS[1], 'failed:' .. hash .. ':' .. ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], 'failed:' .. hash .. ':' .. exp, 'KEEPTTL')
end
return 1
`

// newRedisTokenStore builds the client; it does not dial (the first
// command or ping does).
func newRedisTokenStore(c *RedisReplayStoreConfig, linger, retryWindow time.Duration) (*redisTokenStore, error) {
	opts, err := redisconn.Options(c.Config, c.TLS)
	if err != nil {
		return nil, fmt.Errorf("mailgun replay store: %w", err)
	}
	// A reserve whose answer was lost may have run: run again it would
	// find the token it reserved and reject a genuine request as a replay.
	opts.MaxRetries = -1
	opts.DialTimeout = c.Timeout.D()
	opts.ContextTimeoutEnabled = true
	return &redisTokenStore{
		rdb: redis.NewClient(opts), addr: c.Addr, prefix: c.Prefix,
		timeout: c.Timeout.D(), linger: linger, retryWindow: retryWindow,
		reserveScript: redis.NewScript(reserveLua), settleScript: redis.NewScript(settleLua),
		releaseScript: redis.NewScript(releaseLua),
	}, nil
}

func (s *redisTokenStore) reserve(ctx context.Context, token string, body [32]byte, signedAt time.Time, maxAge time.Duration, now time.Time) (reserveResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	isStale := "0"
	if absDuration(now.Sub(signedAt)) > maxAge {
		isStale = "1"
	}
	exp := tokenExpiry(signedAt, maxAge)
	ttl := 3*maxAge + time.Second + s.linger // see the type's comment
	hash := hex.EncodeToString(body[:])
	n, err := s.reserveScript.Run(ctx, s.rdb, []string{s.prefix + token},
		hash, ms(now), isStale, ms(exp), max(1, ttl.Milliseconds())).Int()
	if err != nil {
		// The script may have run with its answer lost: the token would
		// stay in flight and the provider's retries be refused as
		// replays. Release what this request may hold, on a fresh
		// deadline; the request itself is answered 503.
		_ = s.release(context.WithoutCancel(ctx), token, hash, exp, now)
		return 0, fmt.Errorf("redis %s: reserve a token: %w", s.addr, err)
	}
	switch n {
	case 0:
		return reserved, nil
	case 1:
		return replayed, nil
	case 2:
		return stale, nil
	}
	return 0, fmt.Errorf("redis %s: reserve a token: unexpected answer %d", s.addr, n)
}

// release marks the entry a request reserved (same body hash and expiry)
// as failed, as settle(false) would: for a reserve whose answer was lost.
func (s *redisTokenStore) release(ctx context.Context, token, hash string, exp, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.releaseScript.Run(ctx, s.rdb, []string{s.prefix + token},
		hash, ms(exp), ms(now.Add(s.retryWindow)), max(1, (s.retryWindow+s.linger).Milliseconds())).Err()
}

func (s *redisTokenStore) settle(ctx context.Context, token string, ok bool, now time.Time, retryWindow time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	written := "0"
	if ok {
		written = "1"
	}
	err := s.settleScript.Run(ctx, s.rdb, []string{s.prefix + token},
		written, ms(now.Add(retryWindow)), max(1, (retryWindow+s.linger).Milliseconds())).Err()
	if err != nil {
		return fmt.Errorf("redis %s: settle a token: %w", s.addr, err)
	}
	return nil
}

func (s *redisTokenStore) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: ping: %w", s.addr, err)
	}
	return nil
}

func (s *redisTokenStore) close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis %s: close: %w", s.addr, err)
	}
	return nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
