package poller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// MaxBody bounds what is read of one response.
const MaxBody = 64 << 20

// Do sends req and reads the whole body; a body nested deeper than
// pipeline.DefaultMaxJSONDepth is a permanent error.
func Do(ctx context.Context, c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return resp, nil, fmt.Errorf("%s %s: reading body: %w", req.Method, req.URL.Path, err)
	}
	// The connectors decode pages with encoding/json, which recurses; a
	// vendor answer this deep is refused first, and retrying would get the
	// same page, so it is permanent.
	if err := pipeline.CheckJSONDepth(body, pipeline.DefaultMaxJSONDepth); err != nil {
		return resp, nil, pipeline.Permanent(fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err))
	}
	return resp, body, nil
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date); def
// when absent or unreadable.
func RetryAfter(h http.Header, now time.Time, def time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return def
}

// ServerTime is the Date header, zero when absent.
func ServerTime(h http.Header) time.Time {
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// RateLimitWait is the pause an answer's rate-limit headers ask for, on
// any status: Retry-After first (seconds or an HTTP date), else what the
// vendor's own budget headers say (budget, nil for none); 0 asks for none.
func RateLimitWait(h http.Header, now time.Time, budget func(http.Header, time.Time) time.Duration) time.Duration {
	if d := RetryAfter(h, now, -1); d >= 0 {
		return d
	}
	if budget != nil {
		return max(budget(h, now), 0)
	}
	return 0
}

// ResetWait reads a rate-limit window's reset header (X-RateLimit-Reset):
// Unix seconds when the window resets (a value past 1e9), seconds until
// it does (a smaller one), or an HTTP date; def when absent or unreadable.
func ResetWait(v string, now time.Time, def time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e13 {
		if n > 1e9 {
			return max(time.Unix(0, int64(n*1e9)).Sub(now), 0)
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return def
}

// StatusError classifies a failed answer: 429 (and 503 with Retry-After)
// wait as told, other 5xx and 408 are retried with backoff, the rest (bad
// credentials, bad query, unknown object) are permanent: retrying will not
// mend them.
func StatusError(vendor string, req *http.Request, resp *http.Response, body []byte) error {
	return StatusErrorWait(vendor, req, resp, body, RetryAfter(resp.Header, time.Now(), 0))
}

// StatusErrorWait is StatusError when the caller read the answer's
// rate-limit headers itself: wait (from RateLimitWait) is the pause they
// ask for. A 429 waits it, or 10 s when it is 0; a retryable answer (5xx,
// 408) with a wait waits it rather than backing off.
func StatusErrorWait(vendor string, req *http.Request, resp *http.Response, body []byte, wait time.Duration) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	err := fmt.Errorf("%s: %s %s: %s: %s", vendor, req.Method, req.URL.Path, resp.Status, msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if wait <= 0 {
			wait = 10 * time.Second
		}
		return &RetryAfterError{Wait: wait, Err: err}
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout:
		if wait > 0 {
			return &RetryAfterError{Wait: wait, Err: err}
		}
		return err
	}
	return pipeline.Permanent(err)
}

// NextLink is the rel="next" target of an RFC 5988 Link header, or "".
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for part := range strings.SplitSeq(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.ToLower(strings.Trim(val, `"`))), "next") {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
