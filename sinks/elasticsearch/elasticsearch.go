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
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/reuse"
	"github.com/sluicehq/sluice/pipeline"
)

// Register adds the elasticsearch sink to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "elasticsearch", "documents to Elasticsearch or OpenSearch through the Bulk API (explicit _id, per-item retry/dead-letter)", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(bc, *c)
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
	work    *reuse.Pool[work]
	seed    maphash.Seed
	// ready holds the last whole-request failure, nil after a success.
	ready  pipeline.Readiness
	filter []string
}

// New builds the client; nothing is sent until Start or the first Write.
func New(bc pipeline.BuildContext, c Config) (*Sink, error) {
	log, reg := bc.Logger, bc.Metrics
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
	// Kept across garbage collections (a sync.Pool dropped the batch's
	// buffers between most batches): one per Write the pipeline's lanes
	// may run at once, at least 2, at most 64.
	s.work = reuse.New(min(max(bc.Lanes, 2), 64), func() *work { return &work{} })
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
