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
// against the caller's clock; the key's server-side TTL is that expiry plus
// linger (the longest a request can take between reserve and settle), so
// nothing outlives its use and a settle still finds an entry that expired
// while its request was waiting for the ack, as replaySet's would.
type redisTokenStore struct {
	rdb           *redis.Client
	addr          string
	prefix        string
	timeout       time.Duration
	linger        time.Duration
	reserveScript *redis.Script
	settleScript  *redis.Script
}

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
func newRedisTokenStore(c *RedisReplayStoreConfig, linger time.Duration) (*redisTokenStore, error) {
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
		timeout: c.Timeout.D(), linger: linger,
		reserveScript: redis.NewScript(reserveLua), settleScript: redis.NewScript(settleLua),
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
	// Only written when fresh, i.e. exp is at least a second away.
	ttl := exp.Sub(now) + s.linger
	n, err := s.reserveScript.Run(ctx, s.rdb, []string{s.prefix + token},
		hex.EncodeToString(body[:]), ms(now), isStale, ms(exp), max(1, ttl.Milliseconds())).Int()
	if err != nil {
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
