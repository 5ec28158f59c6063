package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

var _ pipeline.Auditor = (*Config)(nil)

// Audit reads the indices of the config's index template back (every
// placeholder a wildcard), through the first URL with the basic-auth
// credentials.
func (c *Config) Audit(_ context.Context, label string) (pipeline.StoreAudit, error) {
	if len(c.URLs) == 0 {
		return nil, errors.New("no urls")
	}
	return &esAudit{label: label, url: strings.TrimRight(c.URLs[0], "/"), user: c.Username,
		pass: c.Password, pattern: indexPattern(c.Index.String())}, nil
}

// indexPattern turns an index template into a search pattern:
// "bench-events-{2006.01.02}" → "bench-events-*".
var placeholder = regexp.MustCompile(`\{\{[^}]*\}\}|\{[^}]*\}`)

func indexPattern(tmpl string) string { return placeholder.ReplaceAllString(tmpl, "*") }

// esAudit reads ids back with search requests. A real engine (OpenSearch,
// Elasticsearch) is refreshed and counted through the Count API; where
// _refresh or _count is missing (ZincSearch, whose indexing is
// asynchronous), Counts polls until the search total stops moving.
type esAudit struct {
	label, url, user, pass, pattern string
}

func (e *esAudit) Name() string     { return e.label }
func (e *esAudit) Idempotent() bool { return true }

func (e *esAudit) do(ctx context.Context, method, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.user != "" {
		req.SetBasicAuth(e.user, e.pass)
	}
	return http.DefaultClient.Do(req)
}

// Reset deletes the indices.
func (e *esAudit) Reset(ctx context.Context) error {
	resp, err := e.do(ctx, http.MethodDelete, "/"+e.pattern, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// search runs one query and returns the total and the ids of the hits.
func (e *esAudit) search(ctx context.Context, query string) (int, []string, error) {
	resp, err := e.do(ctx, http.MethodPost, "/"+e.pattern+"/_search", query)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("search %s: %s: %.200s", e.pattern, resp.Status, data)
	}
	r := gjson.ParseBytes(data)
	var ids []string
	for _, h := range r.Get("hits.hits").Array() {
		ids = append(ids, h.Get("_id").String())
	}
	return int(r.Get("hits.total.value").Int()), ids, nil
}

// Counts looks the sent ids up with ids queries, a thousand at a time:
// listing an index page by page is capped (the result window) and, without
// a stable order, skips and repeats documents. Documents beyond those found
// are ones no sent event explains, and are reported as such.
func (e *esAudit) Counts(ctx context.Context, want map[string]int) (map[string]int, error) {
	last, exact, err := e.refreshCount(ctx)
	if err != nil {
		return nil, err
	}
	if !exact {
		if last, err = e.settledTotal(ctx); err != nil {
			return nil, err
		}
	}
	out := map[string]int{}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	const chunk = 1000
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		values, _ := json.Marshal(part)
		_, found, err := e.search(ctx, fmt.Sprintf(`{"size":%d,"_source":false,"query":{"ids":{"values":%s}}}`, len(part), values))
		if err != nil {
			return nil, err
		}
		for _, id := range found {
			out[id]++
		}
	}
	found := 0
	for _, n := range out {
		found += n
	}
	for i := found; i < last; i++ {
		out[fmt.Sprintf("(document %d not sent)", i)]++
	}
	return out, nil
}

// refreshCount refreshes the indices and reads their document count through
// the Count API. exact is false when the server has no _refresh or _count
// (ZincSearch answers 404), and the caller must poll instead.
func (e *esAudit) refreshCount(ctx context.Context) (total int, exact bool, err error) {
	resp, err := e.do(ctx, http.MethodPost, "/"+e.pattern+"/_refresh?allow_no_indices=true", "")
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, nil
	}
	resp, err = e.do(ctx, http.MethodGet, "/"+e.pattern+"/_count?allow_no_indices=true", "")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, nil
	}
	c := gjson.GetBytes(data, "count")
	if !c.Exists() {
		return 0, false, fmt.Errorf("count %s: no count in %.200s", e.pattern, data)
	}
	return int(c.Int()), true, nil
}

// settledTotal waits for asynchronous indexing: the search total must hold
// still for 5s (within 3 minutes).
func (e *esAudit) settledTotal(ctx context.Context) (int, error) {
	last, stable := -1, time.Now()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		total, _, err := e.search(ctx, `{"size":0,"track_total_hits":true,"query":{"match_all":{}}}`)
		if err != nil {
			return 0, err
		}
		if total != last {
			last, stable = total, time.Now()
		} else if time.Since(stable) >= 5*time.Second {
			break
		}
	}
	return last, nil
}

var _ pipeline.Cleaner = (*esAudit)(nil)

// Target is the index pattern the audit reads.
func (e *esAudit) Target() string { return "indices " + e.pattern }

// Drop deletes the indices of the pattern when the pattern contains stamp
// (the bench's per-run indices). It resolves the pattern to index names
// first and deletes those by name, each of which must contain stamp too:
// Elasticsearch refuses wildcard deletes by default
// (action.destructive_requires_name).
func (e *esAudit) Drop(ctx context.Context, stamp string) (bool, error) {
	if stamp == "" || !strings.Contains(e.pattern, stamp) {
		return false, nil
	}
	names, err := e.indices(ctx)
	if err != nil {
		return false, err
	}
	var del []string
	for _, n := range names {
		if strings.Contains(n, stamp) {
			del = append(del, url.PathEscape(n))
		}
	}
	if len(del) == 0 {
		return true, nil
	}
	resp, err := e.do(ctx, http.MethodDelete, "/"+strings.Join(del, ","), "")
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", e.Target(), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return false, fmt.Errorf("delete %s: %s: %.200s", e.Target(), resp.Status, data)
	}
	return true, nil
}

// indices lists the names of the indices the pattern matches.
func (e *esAudit) indices(ctx context.Context) ([]string, error) {
	resp, err := e.do(ctx, http.MethodGet, "/_cat/indices/"+e.pattern+"?format=json&h=index&expand_wildcards=all", "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", e.Target(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", e.Target(), err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list %s: %s: %.200s", e.Target(), resp.Status, data)
	}
	var names []string
	for _, r := range gjson.ParseBytes(data).Array() {
		names = append(names, r.Get("index").String())
	}
	return names, nil
}
