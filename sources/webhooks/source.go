// Package webhooks is the `webhooks` source: an HTTP server with a route per
// email provider (SendGrid, Mailgun, Amazon SES via SNS) that verifies each
// request's signature, turns it into one source batch, and answers 2xx only
// once the runner acked that batch, i.e. once every event is durably
// written. Anything else is answered with a status that makes the provider
// retry, so nothing we failed to take is lost.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// Register adds the webhooks source to r. opts are for tests (an HTTP
// client that serves SNS certificates without the network, a clock).
func Register(r *pipeline.Registry, opts ...Option) {
	pipeline.RegisterSource(r, "webhooks", "an HTTP server for SendGrid, Mailgun and SES (SNS) webhooks, answering 2xx once the events are durably written", func(bc pipeline.BuildContext, c *Config) (pipeline.Source, error) {
		return New(bc, *c, opts...)
	})
}

// Option adjusts a Source.
type Option func(*Source)

// WithHTTPClient sets the client that fetches SNS signing certificates and
// GETs SubscribeURLs (default: a client with the ses.fetch_timeout). The
// URL checks run before the client is asked, so a test client may serve
// anything.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

// WithClock sets the clock timestamps are checked against.
func WithClock(now func() time.Time) Option { return func(s *Source) { s.now = now } }

// Errors a request's events can end with instead of an ack.
var (
	ErrQueueFull  = errors.New("webhooks: the pipeline did not take the request within ack_timeout")
	ErrAckTimeout = errors.New("webhooks: the events were not acked within ack_timeout")
	ErrStopping   = errors.New("webhooks: the source is shutting down")
)

// pending is one request's batch, queued for Read.
type pending struct {
	events []*pipeline.Event
	state  atomic.Int32 // stateQueued, stateTaken or stateAbandoned
	done   chan error
}

const (
	stateQueued int32 = iota
	stateTaken
	stateAbandoned
)

// Source is the webhook server.
type Source struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	client  *http.Client
	now     func() time.Time

	queue    chan *pending
	slots    chan struct{} // max_concurrent
	stopping chan struct{}
	stopOnce sync.Once

	// The providers' replay checks, nil for a provider not configured.
	sendgridGuard, mailgunGuard, sesGuard *replayGuard
	certs                                 *certCache
	accounts                              map[string]bool
	// bodies bounds the bytes request bodies hold (byteBudget).
	bodies *byteBudget

	// probeEvery is how often Start's probe pings the shared replay
	// stores.
	probeEvery time.Duration
	probeStop  context.CancelFunc
	probeDone  chan struct{}
	closeOnce  sync.Once

	srv     *http.Server
	ln      net.Listener
	served  chan struct{}
	started atomic.Bool
}

// New builds a source; nothing listens until Start.
func New(bc pipeline.BuildContext, c Config, opts ...Option) (*Source, error) {
	log, reg := bc.Logger, bc.Metrics
	if c.SendGrid != nil {
		if err := c.SendGrid.Validate(); err != nil {
			return nil, fmt.Errorf("webhooks source: sendgrid.%w", err)
		}
	}
	if c.Mailgun != nil {
		if err := c.Mailgun.Validate(); err != nil {
			return nil, fmt.Errorf("webhooks source: mailgun.%w", err)
		}
	}
	if c.SES != nil {
		if err := c.SES.Validate(); err != nil {
			return nil, fmt.Errorf("webhooks source: ses.%w", err)
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg: c, log: log, metrics: m, now: time.Now,
		queue: make(chan *pending, max(1, c.QueueSize)), stopping: make(chan struct{}),
		slots: make(chan struct{}, max(1, c.MaxConcurrent)),
		certs: newCertCache(100), served: make(chan struct{}),
		probeEvery: defaultProbeEvery,
		bodies:     &byteBudget{left: int64(max(1, c.MaxConcurrent)) * (int64(c.MaxBodyBytes) + 1), inUse: m.bodyBytes},
	}
	guard := func(provider, what string, rc ReplayConfig) *replayGuard {
		g, gerr := newReplayGuard(provider, what, rc, c.AckTimeout.D())
		err = errors.Join(err, gerr)
		return g
	}
	if c.SendGrid != nil {
		s.sendgridGuard = guard("sendgrid", "SendGrid signature", c.SendGrid.ReplayConfig)
	}
	if c.Mailgun != nil {
		s.mailgunGuard = guard("mailgun", "Mailgun token", c.Mailgun.ReplayConfig)
	}
	if c.SES != nil {
		s.sesGuard = guard("ses", "SNS message", c.SES.ReplayConfig)
	}
	if err != nil {
		// The stores built for the providers before the one that failed
		// are open (a Redis client runs goroutines from the start).
		return nil, errors.Join(fmt.Errorf("webhooks source: %w", err), s.closeGuards())
	}
	if len(c.Accounts) > 0 {
		s.accounts = map[string]bool{}
		for _, a := range c.Accounts {
			s.accounts[a] = true
		}
	}
	for _, o := range opts {
		o(s)
	}
	if s.client == nil {
		timeout := defaultFetchTimeout
		if c.SES != nil {
			timeout = c.SES.FetchTimeout.D()
		}
		s.client = &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return s, nil
}

// Handler is the source's routes, for tests and embedding.
func (s *Source) Handler() http.Handler {
	mux := http.NewServeMux()
	add := func(provider string, fn providerFunc) {
		h := s.route(provider, fn)
		mux.HandleFunc("POST "+s.cfg.PathPrefix+"/"+provider, h)
		mux.HandleFunc("POST "+s.cfg.PathPrefix+"/"+provider+"/{account}", h)
	}
	if s.cfg.SendGrid != nil {
		add("sendgrid", s.sendgrid)
	}
	if s.cfg.Mailgun != nil {
		add("mailgun", s.mailgun)
	}
	if s.cfg.SES != nil {
		add("ses", s.ses)
	}
	return mux
}

// Start binds the listener, so a taken port fails the run, and serves.
func (s *Source) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("webhooks source: listen on %s: %w", s.cfg.Listen, err)
	}
	fetch := time.Duration(0)
	if s.cfg.SES != nil {
		fetch = 2 * s.cfg.SES.FetchTimeout.D()
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadTimeout.D(),
		ReadTimeout:       s.cfg.ReadTimeout.D(),
		WriteTimeout:      s.cfg.ReadTimeout.D() + s.cfg.AckTimeout.D() + fetch + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("webhook server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	if len(s.sharedGuards()) > 0 {
		// Before started: Ready reports the stores as found at Start.
		s.startProbe()
	}
	s.started.Store(true)
	s.log.Info("serving webhooks", "addr", ln.Addr().String(), "prefix", s.cfg.PathPrefix, "providers", s.providers())
	return nil
}

// defaultProbeEvery is how often the shared replay store is pinged.
const defaultProbeEvery = 5 * time.Second

func (s *Source) providers() []string {
	var p []string
	if s.cfg.SendGrid != nil {
		p = append(p, "sendgrid")
	}
	if s.cfg.Mailgun != nil {
		p = append(p, "mailgun")
	}
	if s.cfg.SES != nil {
		p = append(p, "ses")
	}
	return p
}

// Addr is the bound address, once started (nil before).
func (s *Source) Addr() net.Addr {
	if !s.started.Load() {
		return nil
	}
	return s.ln.Addr()
}

// Queued is how many requests wait for the pipeline to take them.
func (s *Source) Queued() int { return len(s.queue) }

// Read returns the events of the next request that is still waiting.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	for {
		if err := ctx.Err(); err != nil {
			// The runner reads no more: answer waiting requests now.
			s.stop()
			return nil, nil, err
		}
		select {
		case <-ctx.Done():
			continue
		case p := <-s.queue:
			if !p.state.CompareAndSwap(stateQueued, stateTaken) {
				continue // its request gave up before we took it
			}
			return p.events, func(err error) { p.done <- err }, nil
		}
	}
}

func (s *Source) stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// Ready reports whether the server is listening and taking requests, and
// whether the shared Mailgun replay store answered its last request or
// ping.
func (s *Source) Ready() error {
	if !s.started.Load() {
		return errors.New("webhook server not started")
	}
	select {
	case <-s.stopping:
		return ErrStopping
	default:
	}
	return s.storeProblems()
}

// Close answers requests still waiting with 503, shuts the server down
// gracefully within ctx, then closes the replay store.
func (s *Source) Close(ctx context.Context) error {
	s.stop()
	var err error
	if s.srv != nil {
		if err = s.srv.Shutdown(ctx); err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.served
	}
	s.closeOnce.Do(func() {
		if s.probeStop != nil {
			s.probeStop()
			<-s.probeDone
		}
		err = errors.Join(err, s.closeGuards())
	})
	return err
}

// submit queues events as one batch and waits for its ack.
func (s *Source) submit(ctx context.Context, events []*pipeline.Event) error {
	p := &pending{events: events, done: make(chan error, 1)}
	timer := time.NewTimer(s.cfg.AckTimeout.D())
	defer timer.Stop()
	select {
	case <-s.stopping:
		return ErrStopping
	default:
	}
	select {
	case s.queue <- p:
	case <-timer.C:
		return ErrQueueFull
	case <-s.stopping:
		return ErrStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	stopping := s.stopping
	for {
		select {
		case err := <-p.done:
			return err
		case <-timer.C:
			if p.state.CompareAndSwap(stateQueued, stateAbandoned) {
				return ErrQueueFull
			}
			return ErrAckTimeout
		case <-stopping:
			if p.state.CompareAndSwap(stateQueued, stateAbandoned) {
				return ErrStopping
			}
			// Taken: the runner acks it (maybe with an error) before
			// the source is closed.
			stopping = nil
		case <-ctx.Done():
			p.state.CompareAndSwap(stateQueued, stateAbandoned)
			return ctx.Err()
		}
	}
}

// httpError is a request answered without enqueueing anything.
type httpError struct {
	status  int
	outcome string
	msg     string // safe to show the caller: no secrets, no signatures
}

func (e *httpError) Error() string { return e.msg }

func reject(status int, outcome, format string, args ...any) *httpError {
	return &httpError{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) *httpError {
	return reject(http.StatusUnauthorized, outcomeUnauthorized, format, args...)
}

func badRequest(format string, args ...any) *httpError {
	return reject(http.StatusBadRequest, outcomeBadRequest, format, args...)
}

// result is what a provider handler made of a verified request.
type result struct {
	events []*pipeline.Event
	// settled, when set, learns whether the events were durably taken.
	// Its ctx outlives the request's cancellation: the outcome must be
	// recorded even when the caller went away.
	settled func(ctx context.Context, ok bool)
	// outcome and status answer a request with no events (default 200).
	outcome string
	status  int
	msg     string
}

type providerFunc func(ctx context.Context, r *http.Request, body []byte, account string) (*result, *httpError)

func (s *Source) route(provider string, fn providerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		outcome := s.handle(provider, fn, w, r)
		s.metrics.requests.WithLabelValues(provider, outcome).Inc()
		s.metrics.latency.WithLabelValues(provider, outcome).Observe(time.Since(start).Seconds())
	}
}

func (s *Source) handle(provider string, fn providerFunc, w http.ResponseWriter, r *http.Request) string {
	fail := func(e *httpError) string {
		s.log.Debug("webhook rejected", "provider", provider, "status", e.status, "reason", e.msg, "remote", r.RemoteAddr)
		http.Error(w, e.msg, e.status)
		return e.outcome
	}
	account := s.cfg.AccountID
	if a := r.PathValue("account"); a != "" {
		if !accountRE.MatchString(a) || (s.accounts != nil && !s.accounts[a]) {
			return fail(reject(http.StatusNotFound, outcomeForbidden, "unknown account"))
		}
		account = a
	}
	// The body is read before a handling slot is taken: a slow sender
	// holds only the bytes it sent (s.bodies), never a slot.
	body, held, herr := s.readBody(w, r)
	defer s.bodies.give(held)
	if herr != nil {
		return fail(herr)
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return fail(reject(http.StatusServiceUnavailable, outcomeUnavailable, "too many concurrent requests, retry later"))
	}
	// Before any parser (some recurse) or signature check reads it.
	if err := pipeline.CheckJSONDepth(body, pipeline.DefaultMaxJSONDepth); err != nil {
		return fail(badRequest("%v", err))
	}
	res, herr := fn(r.Context(), r, body, account)
	if herr != nil {
		return fail(herr)
	}
	if len(res.events) == 0 {
		if res.settled != nil {
			res.settled(context.WithoutCancel(r.Context()), true)
		}
		status, outcome := cmp(res.status, http.StatusOK), res.outcome
		if outcome == "" {
			outcome = outcomeAccepted
		}
		if status >= 300 {
			return fail(&httpError{status: status, outcome: outcome, msg: res.msg})
		}
		w.WriteHeader(status)
		return outcome
	}
	err := s.submit(r.Context(), res.events)
	if res.settled != nil {
		res.settled(context.WithoutCancel(r.Context()), err == nil)
	}
	if err != nil {
		s.log.Warn("webhook events not written; answering 503 so the provider retries", "provider", provider, "events", len(res.events), "err", err)
		return fail(reject(http.StatusServiceUnavailable, outcomeUnavailable, "events not written, retry later"))
	}
	s.metrics.events.WithLabelValues(provider).Add(float64(len(res.events)))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
	return outcomeAccepted
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
