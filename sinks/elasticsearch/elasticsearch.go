// Package elasticsearch is the Elasticsearch (and OpenSearch) sink: one
// Bulk API request per batch, every item's result mapped back to its event.
//
// Failure handling, per item: 2xx is stored; 409 on create means the
// document already exists (stored); 429, 5xx, and the 4xx that depend on
// the cluster rather than the document (401, 403, 404, 408, 409 on
// index/update) are retried by the runner for just those events; other
// 4xx (mapping and parse errors) are permanent and dead-lettered with the
// reason Elasticsearch gave. Per request: 413 splits the request in halves
// (a single document that is still too large is permanent); connection
// errors, 429, 5xx and every other status fail the whole batch, retryably.
// The sink never retries or sleeps itself: the runner owns backoff.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

// Register adds the elasticsearch sink to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "elasticsearch", "documents to Elasticsearch or OpenSearch through the Bulk API (explicit _id, per-item retry/dead-letter)", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(*c, bc.Logger, bc.Metrics)
	})
}

// Sink writes events as documents.
type Sink struct {
	cfg Config
	log *slog.Logger
	// client is the official client; perform is what requests go through:
	// the client itself (product check included) for Elasticsearch, its
	// transport (no product check) for OpenSearch.
	client  *es.Client
	perform esapi.Transport
	raw     esapi.Transport // the transport without the product check
	m       *metrics
	id      *pipeline.Template
	action  string
	work    sync.Pool // *work
	seed    maphash.Seed
	// ready holds the last whole-request failure, nil after a success.
	ready  pipeline.Readiness
	filter []string
}

// New builds the client; nothing is sent until Start or the first Write.
func New(c Config, log *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	tlsCfg, err := c.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink: register metrics: %w", err)
	}
	ht := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   tlsCfg != nil,
	}
	if tlsCfg == nil {
		ht.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	client, err := es.NewClient(es.Config{
		Addresses: c.URLs,
		Username:  c.Username,
		Password:  c.Password,
		APIKey:    c.APIKey,
		// Retries, backoff and failover belong to the runner: a retry here
		// would multiply its attempts and hide failures from its metrics.
		DisableRetry:        true,
		CompressRequestBody: c.Compression == "gzip",
		PoolCompressor:      true,
		Transport:           &countingTransport{next: ht, bytes: m.wireBytes},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch sink: %w", err)
	}
	s := &Sink{cfg: c, log: log, client: client, raw: client.Transport, m: m, action: c.Action, seed: maphash.MakeSeed()}
	s.perform = client
	if c.Flavor == FlavorOpenSearch {
		s.perform = client.Transport
	}
	s.id = c.ID
	// Only what the item loop reads: ES drops the rest of each item
	// (_index, _id, _version, _shards, …) before sending it.
	s.filter = []string{"errors", "items.*.status", "items.*.result", "items.*.error.type", "items.*.error.reason", "items.*.error.caused_by.type", "items.*.error.caused_by.reason"}
	s.work.New = func() any { return &work{} }
	return s, nil
}

// Start checks that the cluster answers and accepts the credentials, that
// it is the flavor configured, and installs the index template. A cluster
// that cannot be reached is not fatal (writes are retried until it is
// back; Ready reports it); a definite refusal is.
func (s *Sink) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout.D())
	defer cancel()
	res, err := esapi.InfoRequest{}.Do(ctx, s.raw)
	if err != nil {
		if s.cfg.IndexTemplate != nil {
			return fmt.Errorf("elasticsearch sink: cannot reach %s to install index template %q: %w", strings.Join(s.cfg.URLs, ","), s.cfg.IndexTemplate.Name, err)
		}
		s.ready.Set(fmt.Errorf("elasticsearch unreachable: %w", err))
		s.log.Warn("elasticsearch unreachable at start; writes will be retried", "urls", pipeline.RedactURLs(s.cfg.URLs), "error", err)
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("elasticsearch sink: %s refused the credentials (401 %s): check %s", s.cfg.URLs[0], errorSummary(body), s.credentialKeys())
	case res.StatusCode == http.StatusForbidden:
		// A writer with index privileges only may not read the root
		// endpoint (cluster:monitor/main): not a reason to stop.
		s.log.Warn("elasticsearch: credentials cannot read cluster info (403); skipping the version check", "reason", errorSummary(body))
	case res.StatusCode >= 300:
		return fmt.Errorf("elasticsearch sink: GET / on %s answered %d: %s", s.cfg.URLs[0], res.StatusCode, errorSummary(body))
	default:
		if err := s.checkFlavor(res.Header, body); err != nil {
			return err
		}
	}
	if err := s.probeBulk(ctx); err != nil {
		return err
	}
	if t := s.cfg.IndexTemplate; t != nil {
		if err := s.installTemplate(ctx, t); err != nil {
			return fmt.Errorf("elasticsearch sink: index template %q: %w", t.Name, err)
		}
	}
	s.ready.Set(nil)
	return nil
}

// probeBulk sends an empty bulk request: the credentials are checked on
// the endpoint the sink writes to, which some servers (ZincSearch,
// clusters with anonymous access to GET /) guard while GET / is open.
// Elasticsearch answers 400 (no requests added) once it has authenticated.
func (s *Sink) probeBulk(ctx context.Context) error {
	res, err := esapi.BulkRequest{Body: strings.NewReader("\n")}.Do(ctx, s.raw)
	if err != nil {
		s.ready.Set(fmt.Errorf("elasticsearch unreachable: %w", err))
		s.log.Warn("elasticsearch: bulk endpoint unreachable at start; writes will be retried", "error", err)
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if res.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("elasticsearch sink: %s refused the credentials on _bulk (401 %s): check %s", s.cfg.URLs[0], errorSummary(body), s.credentialKeys())
	}
	return nil
}

func (s *Sink) credentialKeys() string {
	switch {
	case s.cfg.APIKey != "":
		return "api_key"
	case s.cfg.Username != "":
		return fmt.Sprintf("username (%q) and password", s.cfg.Username)
	}
	return "the cluster requires credentials: set username/password or api_key"
}

func (s *Sink) checkFlavor(h http.Header, body []byte) error {
	distribution := gjson.GetBytes(body, "version.distribution").String()
	version := gjson.GetBytes(body, "version.number").String()
	switch s.cfg.Flavor {
	case FlavorElasticsearch:
		if distribution == "opensearch" {
			return fmt.Errorf("elasticsearch sink: %s is OpenSearch %s, not Elasticsearch: set flavor: opensearch", s.cfg.URLs[0], version)
		}
		if h.Get("X-Elastic-Product") != "Elasticsearch" {
			return fmt.Errorf("elasticsearch sink: %s does not identify as Elasticsearch (no X-Elastic-Product header; version %q): the official client refuses it; for OpenSearch set flavor: opensearch", s.cfg.URLs[0], version)
		}
	case FlavorOpenSearch:
		if distribution != "opensearch" {
			s.log.Warn("elasticsearch: flavor is opensearch but the server does not say so", "version", version, "distribution", distribution)
		}
	}
	s.log.Info("elasticsearch: connected", "version", version, "distribution", distribution, "flavor", s.cfg.Flavor)
	return nil
}

func (s *Sink) installTemplate(ctx context.Context, t *IndexTemplate) error {
	body, err := t.body()
	if err != nil {
		return err
	}
	create := !t.Overwrite
	res, err := esapi.IndicesPutIndexTemplateRequest{Name: t.Name, Body: bytes.NewReader(body), Create: &create}.Do(ctx, s.perform)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode < 300 {
		s.log.Info("elasticsearch: index template installed", "name", t.Name)
		return nil
	}
	if create && res.StatusCode == http.StatusBadRequest && strings.Contains(string(rb), "already exists") {
		s.log.Info("elasticsearch: index template exists; left as it is (overwrite: false)", "name", t.Name)
		return nil
	}
	return fmt.Errorf("PUT _index_template answered %d: %s", res.StatusCode, errorSummary(rb))
}

// Ready reports the last whole-request failure until a request succeeds.
func (s *Sink) Ready() error { return s.ready.Ready() }

// Close releases the client's connections.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.client.Close(ctx); err != nil && !errors.Is(err, es.ErrAlreadyClosed) {
		return fmt.Errorf("elasticsearch sink: close: %w", err)
	}
	return nil
}

// item is one encoded document: buf[start:end] is its action and source.
type item struct {
	idx        int // position in the batch
	start, end int
}

// work is one Write's reusable state.
type work struct {
	buf    []byte
	items  []item
	errs   []error
	groups [][]item
	resp   bytes.Buffer
}

// Write sends the batch as bulk requests and maps every item back.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	w := s.work.Get().(*work)
	defer s.putWork(w)
	w.errs = slices.Grow(w.errs[:0], len(batch))[:len(batch)]
	clear(w.errs)
	s.encode(w, batch)

	groups := w.groups
	if len(groups) <= 1 {
		for _, g := range groups {
			s.sendGroup(ctx, w, g, &w.resp)
		}
	} else {
		var wg sync.WaitGroup
		for _, g := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp bytes.Buffer
				s.sendGroup(ctx, w, g, &resp)
			}()
		}
		wg.Wait()
	}
	return pipeline.FoldEventErrors(w.errs)
}

func (s *Sink) putWork(w *work) {
	if cap(w.buf) > 64<<20 {
		w.buf = nil
	}
	clear(w.errs)
	w.resp.Reset()
	s.work.Put(w)
}

// encode appends every event's action line and source to w.buf. An event
// that cannot be encoded (no body, unrenderable index or id) fails
// permanently. With parallelism, events are laid out grouped by a hash of
// index and _id so a document's writes stay in one group, in order.
func (s *Sink) encode(w *work, batch []*pipeline.Event) {
	w.buf = w.buf[:0]
	w.items = w.items[:0]
	par := s.cfg.Parallelism
	if par > len(batch) {
		par = len(batch)
	}
	if par <= 1 {
		for i, ev := range batch {
			s.encodeOne(w, i, ev)
		}
		w.groups = append(w.groups[:0], w.items)
		return
	}
	// Two passes: encode in batch order, then reorder items by group. The
	// bytes of one group must be contiguous, so copy into a second buffer.
	for i, ev := range batch {
		s.encodeOne(w, i, ev)
	}
	groupOf := make([]int, len(w.items))
	counts := make([]int, par)
	for j, it := range w.items {
		g := int(maphash.Bytes(s.seed, w.buf[it.start:actionEnd(w.buf, it)]) % uint64(par))
		groupOf[j] = g
		counts[g]++
	}
	buf := make([]byte, 0, len(w.buf))
	items := make([]item, 0, len(w.items))
	w.groups = w.groups[:0]
	for g := range par {
		if counts[g] == 0 {
			continue
		}
		first := len(items)
		for j, it := range w.items {
			if groupOf[j] != g {
				continue
			}
			start := len(buf)
			buf = append(buf, w.buf[it.start:it.end]...)
			items = append(items, item{idx: it.idx, start: start, end: len(buf)})
		}
		w.groups = append(w.groups, items[first:])
	}
	w.buf, w.items = buf, items
}

// actionEnd is where the action line of it ends: the hash key (index, id).
func actionEnd(buf []byte, it item) int {
	if n := bytes.IndexByte(buf[it.start:it.end], '\n'); n >= 0 {
		return it.start + n
	}
	return it.end
}

func (s *Sink) encodeOne(w *work, i int, ev *pipeline.Event) {
	start := len(w.buf)
	buf, err := s.appendDoc(w.buf, ev)
	if err != nil {
		w.buf = buf[:start]
		w.errs[i] = pipeline.Permanent(err)
		s.m.items.WithLabelValues("failed", "encode").Inc()
		return
	}
	w.buf = buf
	w.items = append(w.items, item{idx: i, start: start, end: len(buf)})
}

// appendDoc appends the action line and the source line of ev.
func (s *Sink) appendDoc(buf []byte, ev *pipeline.Event) ([]byte, error) {
	body := ev.Body
	if len(body) == 0 {
		body = ev.Payload
	}
	if len(body) == 0 {
		return buf, fmt.Errorf("event %s has no body to index (is a decode step missing?)", ev.ID)
	}
	buf = append(buf, `{"`...)
	buf = append(buf, s.action...)
	buf = append(buf, `":{"_index":"`...)
	start := len(buf)
	var err error
	if buf, err = s.cfg.Index.Render(buf, ev); err != nil {
		return buf, fmt.Errorf("index name: %w", err)
	}
	buf = escapeTail(buf, start)
	buf = append(buf, `","_id":"`...)
	start = len(buf)
	if s.id != nil {
		if buf, err = s.id.Render(buf, ev); err != nil {
			return buf, fmt.Errorf("document id: %w", err)
		}
	} else {
		buf = append(buf, ev.ID...)
	}
	if len(buf) == start {
		return buf, fmt.Errorf("event has an empty document id")
	}
	if len(buf)-start > 512 {
		return buf, fmt.Errorf("document id of event %s is %d bytes, over Elasticsearch's 512", ev.ID, len(buf)-start)
	}
	buf = escapeTail(buf, start)
	if s.cfg.Routing != nil {
		buf = append(buf, `","routing":"`...)
		start = len(buf)
		if buf, err = s.cfg.Routing.Render(buf, ev); err != nil {
			return buf, fmt.Errorf("routing: %w", err)
		}
		buf = escapeTail(buf, start)
	}
	buf = append(buf, "\"}}\n"...)
	if s.action == ActionUpdate {
		buf = append(buf, `{"doc":`...)
	}
	// The source goes as it is; only a body spread over lines (the bulk
	// format is one line per source) is compacted.
	if bytes.IndexByte(body, '\n') >= 0 {
		var cb bytes.Buffer
		if err := json.Compact(&cb, body); err != nil {
			return buf, fmt.Errorf("event %s body is not valid JSON: %w", ev.ID, err)
		}
		body = cb.Bytes()
	}
	buf = append(buf, body...)
	if s.action == ActionUpdate {
		buf = append(buf, `,"doc_as_upsert":true}`...)
	}
	return append(buf, '\n'), nil
}

// escapeTail JSON-escapes buf[start:] in place (the common case, nothing
// to escape, costs one scan).
func escapeTail(buf []byte, start int) []byte {
	for _, c := range buf[start:] {
		if c < 0x20 || c == '"' || c == '\\' {
			raw := string(buf[start:])
			q, _ := json.Marshal(raw)
			return append(buf[:start], q[1:len(q)-1]...)
		}
	}
	return buf
}

// sendGroup sends one group's items in order, max_batch at a time.
func (s *Sink) sendGroup(ctx context.Context, w *work, items []item, resp *bytes.Buffer) {
	for len(items) > 0 {
		n, size := 0, 0
		for n < len(items) && n < s.cfg.MaxBatch.Events {
			sz := items[n].end - items[n].start
			if n > 0 && size+sz > int(s.cfg.MaxBatch.Bytes) {
				break
			}
			size += sz
			n++
		}
		if err := s.send(ctx, w, items[:n], resp); err != nil {
			// No answer: the cluster is down or unreachable. The rest of
			// the group would wait out the same failure; fail it now.
			s.failAll(w, items[n:], err, "error")
			return
		}
		items = items[n:]
	}
}

// send is one bulk request of contiguous items; a 413 splits it in
// halves. It returns the transport error when the request got no answer.
func (s *Sink) send(ctx context.Context, w *work, items []item, resp *bytes.Buffer) error {
	body := w.buf[items[0].start:items[len(items)-1].end]
	status, err := s.bulk(ctx, body, resp)
	switch {
	case err != nil:
		s.failAll(w, items, err, "error")
		return err
	case status == http.StatusRequestEntityTooLarge:
		if len(items) == 1 {
			w.errs[items[0].idx] = pipeline.Permanent(fmt.Errorf("document of %d bytes is too large for the cluster (413 on its own; raise http.max_content_length or shrink it)", len(body)))
			s.m.items.WithLabelValues("failed", "413").Inc()
			return nil
		}
		half := len(items) / 2
		if err := s.send(ctx, w, items[:half], resp); err != nil {
			s.failAll(w, items[half:], err, "error")
			return err
		}
		return s.send(ctx, w, items[half:], resp)
	case status >= 200 && status < 300:
		s.items(w, items, resp.Bytes())
	default:
		err := &requestError{status: status, reason: errorSummary(resp.Bytes())}
		s.failAll(w, items, err, strconv.Itoa(status))
	}
	return nil
}

func (s *Sink) failAll(w *work, items []item, err error, status string) {
	s.ready.Set(err)
	for _, it := range items {
		w.errs[it.idx] = err
	}
	s.m.items.WithLabelValues("retry", status).Add(float64(len(items)))
}

// bulk posts body and reads the response into resp. err is a transport
// failure; any HTTP answer is a status.
func (s *Sink) bulk(ctx context.Context, body []byte, resp *bytes.Buffer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout.D())
	defer cancel()
	t0 := time.Now()
	res, err := esapi.BulkRequest{
		Body:       bytes.NewReader(body),
		Pipeline:   s.cfg.Pipeline,
		FilterPath: s.filter,
	}.Do(ctx, s.perform)
	s.m.sentBytes.Add(float64(len(body)))
	if err != nil {
		s.m.latency.Observe(time.Since(t0).Seconds())
		s.m.requests.WithLabelValues("error").Inc()
		return 0, &transportError{err: err}
	}
	resp.Reset()
	_, err = resp.ReadFrom(res.Body)
	res.Body.Close()
	s.m.latency.Observe(time.Since(t0).Seconds())
	s.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
	if err != nil {
		return 0, &transportError{err: fmt.Errorf("reading bulk response: %w", err)}
	}
	return res.StatusCode, nil
}

// items maps a bulk response's items back to their events.
func (s *Sink) items(w *work, items []item, resp []byte) {
	// gjson.GetBytes copies what it returns; the response buffer outlives
	// this call, so read it in place.
	doc := unsafe.String(unsafe.SliceData(resp), len(resp))
	arr := gjson.Get(doc, "items")
	if !arr.IsArray() {
		s.failAll(w, items, &requestError{status: 200, reason: "bulk response without items: " + truncate(string(resp), 200)}, "bad_response")
		return
	}
	if !gjson.Get(doc, "errors").Bool() {
		// The fast path: count results without looking at errors.
		n := 0
		var c counts
		arr.ForEach(func(_, v gjson.Result) bool {
			v.ForEach(func(_, r gjson.Result) bool {
				// One scan of the item for both fields.
				var result string
				var status int
				r.ForEach(func(k, val gjson.Result) bool {
					switch k.Str {
					case "result":
						result = val.Str
					case "status":
						status = int(val.Int())
					}
					return true
				})
				c.add(result, status)
				return false
			})
			n++
			return true
		})
		if n != len(items) {
			s.failAll(w, items, &requestError{status: 200, reason: fmt.Sprintf("bulk response has %d items for %d documents", n, len(items))}, "bad_response")
			return
		}
		c.flush(s.m)
		s.ready.Set(nil)
		return
	}
	n := 0
	var c counts
	bad := false
	arr.ForEach(func(_, v gjson.Result) bool {
		if n >= len(items) {
			bad = true
			return false
		}
		it := items[n]
		n++
		v.ForEach(func(_, r gjson.Result) bool {
			status := int(r.Get("status").Int())
			if status >= 200 && status < 300 {
				c.add(r.Get("result").String(), status)
				return false
			}
			if status == http.StatusConflict && s.action == ActionCreate {
				c.add("exists", status)
				return false
			}
			e := r.Get("error")
			// Clone: the strings point into the reused response buffer.
			ie := &ItemError{Status: status, Type: strings.Clone(e.Get("type").String()), Reason: strings.Clone(e.Get("reason").String())}
			if cb := e.Get("caused_by"); cb.Exists() {
				ie.CausedBy = cb.Get("type").String() + ": " + cb.Get("reason").String()
			}
			if !e.IsObject() && e.Exists() {
				ie.Reason = strings.Clone(e.String())
			}
			if ie.Retryable() {
				w.errs[it.idx] = ie
				c.add("retry", status)
			} else {
				w.errs[it.idx] = pipeline.Permanent(ie)
				c.add("failed", status)
			}
			return false
		})
		return true
	})
	if bad || n != len(items) {
		for _, it := range items {
			w.errs[it.idx] = nil
		}
		s.failAll(w, items, &requestError{status: 200, reason: fmt.Sprintf("bulk response item count does not match the %d documents sent", len(items))}, "bad_response")
		return
	}
	c.flush(s.m)
	s.ready.Set(nil)
}

// counts aggregates item outcomes per response, so the metric is touched
// once per (result, status) rather than once per item.
type counts struct {
	k []countKey
	n []int
}

var knownResults = map[string]string{"created": "created", "updated": "updated", "noop": "noop", "exists": "exists", "retry": "retry", "failed": "failed", "deleted": "deleted"}

type countKey struct {
	result string
	status int
}

func (c *counts) add(result string, status int) {
	// result may point into the reused response buffer: keep only
	// constants (label values outlive the buffer).
	switch result {
	case "created", "updated", "noop", "exists", "retry", "failed", "deleted":
		result = knownResults[result]
	default:
		result = "ok"
	}
	for i, k := range c.k {
		if k.status == status && k.result == result {
			c.n[i]++
			return
		}
	}
	c.k = append(c.k, countKey{result, status})
	c.n = append(c.n, 1)
}

func (c *counts) flush(m *metrics) {
	for i, k := range c.k {
		m.items.WithLabelValues(k.result, strconv.Itoa(k.status)).Add(float64(c.n[i]))
	}
}

// ItemError is one document's failure as Elasticsearch reported it.
type ItemError struct {
	Status   int
	Type     string
	Reason   string
	CausedBy string
}

func (e *ItemError) Error() string {
	s := fmt.Sprintf("elasticsearch rejected the document (%d %s): %s", e.Status, e.Type, e.Reason)
	if e.CausedBy != "" && e.CausedBy != ": " {
		s += " (caused by " + e.CausedBy + ")"
	}
	return s
}

// Retryable reports whether the same document may succeed later: the
// cluster was busy or failing, or the failure is about the cluster's
// state (missing index, closed or read-only index, permissions) rather
// than about the document.
func (e *ItemError) Retryable() bool {
	switch {
	case e.Status == http.StatusTooManyRequests, e.Status >= 500, e.Status == 0:
		return true
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden,
		e.Status == http.StatusNotFound, e.Status == http.StatusRequestTimeout,
		e.Status == http.StatusConflict:
		return true
	}
	return false
}

// ErrorClass names the failure for the runner's retries metric. A
// cluster_block_exception other than 429 (index.blocks.write, read_only,
// a closed index) is "blocked": an operator's setting, not a credentials
// problem, so it is not reported as auth.
func (e *ItemError) ErrorClass() string {
	if e.Type == "cluster_block_exception" && e.Status != http.StatusTooManyRequests {
		return "blocked"
	}
	return statusClass(e.Status)
}

func statusClass(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "throttled"
	case status >= 500:
		return "unavailable"
	case status == http.StatusConflict:
		return "conflict"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "auth"
	}
	return "rejected"
}

// requestError is a bulk request the cluster answered with an error
// status as a whole: retryable, since it is not any one document's fault.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string {
	msg := fmt.Sprintf("elasticsearch bulk request failed with %d: %s", e.status, e.reason)
	if e.status == http.StatusUnauthorized {
		msg += " (check the credentials)"
	}
	return msg
}

func (e *requestError) ErrorClass() string { return statusClass(e.status) }

// transportError is a request that got no answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return "elasticsearch bulk request: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// errorSummary pulls "type: reason" out of an Elasticsearch error body, or
// returns the start of the body.
func errorSummary(body []byte) string {
	e := gjson.GetBytes(body, "error")
	if e.IsObject() {
		s := e.Get("type").String() + ": " + e.Get("reason").String()
		if rc := e.Get("root_cause.0.reason"); rc.Exists() && rc.String() != e.Get("reason").String() {
			s += " (" + rc.String() + ")"
		}
		return s
	}
	if e.Exists() {
		return e.String()
	}
	return truncate(strings.TrimSpace(string(body)), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type countingTransport struct {
	next  http.RoundTripper
	bytes prometheus.Counter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.ContentLength > 0 {
		t.bytes.Add(float64(req.ContentLength))
	}
	return t.next.RoundTrip(req)
}

type metrics struct {
	items     *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   prometheus.Histogram
	sentBytes prometheus.Counter
	wireBytes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_items_total",
			Help: "Bulk items by outcome (created, updated, noop, exists, retry, failed) and HTTP status.",
		}, []string{"result", "status"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_bulk_requests_total",
			Help: "Bulk requests by HTTP status (error: no answer).",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_elasticsearch_bulk_duration_seconds",
			Help:    "Time from sending a bulk request to reading its whole response.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		sentBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_sent_bytes_total",
			Help: "Bulk body bytes (NDJSON, before compression).",
		}),
		wireBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_elasticsearch_wire_bytes_total",
			Help: "Request body bytes on the wire (after compression).",
		}),
	}
	for _, c := range []prometheus.Collector{m.items, m.requests, m.latency, m.sentBytes, m.wireBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
