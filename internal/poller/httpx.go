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

// StatusError classifies a failed answer: 429 (and 503 with Retry-After)
// wait as told, other 5xx and 408 are retried with backoff, the rest (bad
// credentials, bad query, unknown object) are permanent: retrying will not
// mend them.
func StatusError(vendor string, req *http.Request, resp *http.Response, body []byte) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	err := fmt.Errorf("%s: %s %s: %s: %s", vendor, req.Method, req.URL.Path, resp.Status, msg)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &RetryAfterError{Wait: RetryAfter(resp.Header, time.Now(), 10*time.Second), Err: err}
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		return &RetryAfterError{Wait: RetryAfter(resp.Header, time.Now(), 10*time.Second), Err: err}
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout:
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
