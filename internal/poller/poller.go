// Package poller runs the poll loop shared by the sources that read a
// vendor's REST API for records modified since a cursor (salesforce,
// hubspot, greenhouse, lever).
//
// A vendor client answers one question: a page of records of an object
// modified at or after a time, continuing from a page token. The poller
// turns records into events, hands them out in batches, tracks acks with
// ackorder and saves, per object, the cursor of the contiguous acked prefix
// only. Queries overlap the cursor and records already handed out are
// dropped by (ID, stamp), so a restart never skips a record; it may repeat
// some, which event IDs (record ID + stamp) make idempotent downstream.
package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/ackorder"
	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
)

// Record is one vendor record.
type Record struct {
	ID string
	// Stamp is the record's system modification time: the cursor, and part
	// of the event id.
	Stamp time.Time
	// OccurredAt is the business modification time a person made, when the
	// vendor keeps it apart from Stamp (Salesforce LastModifiedDate beside
	// SystemModstamp): the envelope's occurred_at, with Stamp kept as
	// system_modified_at. Zero uses Stamp.
	OccurredAt time.Time
	// Type is the event type, e.g. "contact.updated".
	Type string
	// Key is the partition entity (account, contact, candidate); empty
	// uses ID.
	Key string
	// Account is the record's own account (a CRM record's company); empty
	// takes Options.Account.
	Account string
	// Data is the vendor's record as received (JSON).
	Data []byte
}

// Query asks for a page of records of Object modified at or after Since;
// Token is empty for the first page and Page.Next after.
type Query struct {
	Object string
	Since  time.Time
	Token  string
}

// Page is one answer.
type Page struct {
	Records []Record
	// Next continues the query; empty when it is exhausted.
	Next string
	// ServerTime is the vendor's clock when it answered (Date header),
	// zero when unknown.
	ServerTime time.Time
	// Pause asks for a wait before the next request (a rate-limit header
	// said the budget is nearly spent).
	Pause time.Duration
}

// Client reads pages from a vendor. Errors are retried with backoff unless
// marked pipeline.Permanent; a *RetryAfterError sets the wait.
type Client interface {
	Fetch(ctx context.Context, q Query) (Page, error)
}

// RetryAfterError is a rate-limit answer: retry after Wait.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Wait)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Meta keys every poller source (salesforce, hubspot, greenhouse, lever)
// sets on its events, namespaced as the other sources' are.
const (
	MetaSource   = "poller.source"    // the vendor, e.g. "salesforce"
	MetaObject   = "poller.object"    // the vendor object, e.g. "Contact"
	MetaRecordID = "poller.record_id" // the record's id at the vendor
	MetaModstamp = "poller.modstamp"  // the record's modification stamp, RFC 3339
)

// Options configure a Source.
type Options struct {
	// Vendor names the source in event IDs, keys and the envelope.
	Vendor string
	// Account is the account_id of records that name none of their own:
	// the tenant whose credentials the connector polls with.
	Account string
	Objects []string
	// Sorted says the client returns the records of one query in (stamp,
	// ID) order, so the cursor may advance page by page. Otherwise it
	// advances only when a whole query is read, to the time it started.
	Sorted             bool
	Interval           time.Duration
	Overlap            time.Duration
	CheckpointInterval time.Duration
	MinBackoff         time.Duration
	MaxBackoff         time.Duration
	// Start is where an object without a saved cursor begins.
	Start    time.Time
	StateKey string
	Store    Store
	Client   Client
	Logger   *slog.Logger
	// Metrics registers the sluice_poller_* series; nil registers none.
	Metrics prometheus.Registerer
	Now     func() time.Time
	// Sleep waits d or until ctx ends; nil waits on a timer. Tests inject
	// it to see the pauses asked for without waiting them out.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Source is a pipeline.Source over a vendor Client.
type Source struct {
	o    Options
	log  *slog.Logger
	objs []*object
	m    *metrics

	startOnce sync.Once
	startErr  error
	stop      chan struct{}
	done      chan struct{}

	readyMu  sync.Mutex
	readyErr error

	// Read's own state.
	backoff    *pipeline.Backoff
	pauseUntil time.Time
	next       int
}

type object struct {
	name string
	tr   *ackorder.Tracker[Cursor]
	pos  Cursor // where the stream stands after the last batch handed out
	seen map[string]time.Time
	// saved is the cursor in the store; only the checkpointing goroutine
	// and Close (after it stopped) touch it.
	saved Cursor

	sweeping   bool
	since      time.Time
	token      string
	sweepStart time.Time
	due        time.Time
}

// New returns a source; Start (or the first Read) loads the cursors.
func New(o Options) (*Source, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(o.MinBackoff, 5*time.Minute)
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 5 * time.Second
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	s := &Source{o: o, log: o.Logger, m: m, stop: make(chan struct{}), done: make(chan struct{}),
		backoff: pipeline.NewBackoff(o.MinBackoff, o.MaxBackoff)}
	for _, name := range o.Objects {
		s.objs = append(s.objs, &object{name: name, seen: map[string]time.Time{}})
	}
	return s, nil
}

// Start loads each object's cursor and starts checkpointing.
func (s *Source) Start(ctx context.Context) error {
	s.startOnce.Do(func() {
		for _, o := range s.objs {
			c, ok, err := s.o.Store.Load(ctx, s.o.StateKey, o.name)
			if err != nil {
				s.startErr = fmt.Errorf("%s: %w", s.o.Vendor, err)
				close(s.done)
				return
			}
			if !ok {
				c = Cursor{Time: s.o.Start}
			} else if c.ID != "" {
				o.seen[c.ID] = c.Time
			}
			o.pos, o.saved = c, c
			o.tr = ackorder.New(c, true)
			s.log.Info("polling", "object", o.name, "from", c.Time, "saved", ok)
		}
		go s.checkpointLoop()
	})
	return s.startErr
}

func (s *Source) checkpointLoop() {
	defer close(s.done)
	t := time.NewTicker(s.o.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.Checkpoint(ctx); err != nil {
				s.log.Warn("saving cursors failed; retrying at the next interval", "err", err)
			}
			cancel()
		}
	}
}

// Checkpoint saves the cursor of every object whose acked prefix moved.
func (s *Source) Checkpoint(ctx context.Context) error {
	var errs []error
	for _, o := range s.objs {
		if o.tr == nil {
			continue
		}
		c, token, ok := o.tr.ToCommit()
		if !ok {
			continue
		}
		if c.Time.Equal(o.saved.Time) && c.ID == o.saved.ID {
			o.tr.Committed(token)
			continue
		}
		if err := s.o.Store.Save(ctx, s.o.StateKey, o.name, c); err != nil {
			errs = append(errs, err)
			continue
		}
		o.saved = c
		o.tr.Committed(token)
		s.m.cursor.WithLabelValues(s.o.Vendor, o.name).Set(float64(c.Time.UnixNano()) / 1e9)
	}
	return errors.Join(errs...)
}

// Ready reports the last request's failure, if it failed.
func (s *Source) Ready() error {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.readyErr
}

func (s *Source) setReady(err error) {
	s.readyMu.Lock()
	s.readyErr = err
	s.readyMu.Unlock()
}

// Close saves what was acked and closes the store.
func (s *Source) Close(ctx context.Context) error {
	close(s.stop)
	s.startOnce.Do(func() { close(s.done) })
	<-s.done
	err := s.Checkpoint(ctx)
	return errors.Join(err, s.o.Store.Close(ctx))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pick returns the object to query next: one in the middle of a query
// first, then one due, round robin; or how long until one is due.
func (s *Source) pick(now time.Time) (*object, time.Duration) {
	n := len(s.objs)
	for i := range n {
		if o := s.objs[(s.next+i)%n]; o.sweeping {
			return o, 0
		}
	}
	wait := time.Duration(-1)
	for i := range n {
		o := s.objs[(s.next+i)%n]
		if !o.due.After(now) {
			s.next = (s.next + i + 1) % n
			return o, 0
		}
		if d := o.due.Sub(now); wait < 0 || d < wait {
			wait = d
		}
	}
	return nil, wait
}

// Read returns the next page's new records as a batch.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if err := s.Start(ctx); err != nil {
		return nil, nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		now := s.o.Now()
		if d := s.pauseUntil.Sub(now); d > 0 {
			if err := s.o.Sleep(ctx, d); err != nil {
				return nil, nil, err
			}
			s.pauseUntil = time.Time{}
			continue
		}
		o, wait := s.pick(now)
		if o == nil {
			if err := s.o.Sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
			continue
		}
		if !o.sweeping {
			o.sweeping, o.token, o.sweepStart = true, "", time.Time{}
			o.since = o.pos.Time.Add(-s.o.Overlap)
			if o.pos.Time.IsZero() {
				o.since = time.Time{}
			}
			for id, t := range o.seen {
				if t.Before(o.since) {
					delete(o.seen, id)
				}
			}
		}
		page, err := s.o.Client.Fetch(ctx, Query{Object: o.name, Since: o.since, Token: o.token})
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			result := "error"
			if _, ok := errors.AsType[*RetryAfterError](err); ok {
				result = "rate_limited"
			}
			s.m.requests.WithLabelValues(s.o.Vendor, o.name, result).Inc()
			if pipeline.IsPermanent(err) {
				s.setReady(err)
				return nil, nil, fmt.Errorf("%s %s: %w", s.o.Vendor, o.name, err)
			}
			wait := s.backoff.Next()
			if ra, ok := errors.AsType[*RetryAfterError](err); ok {
				// Being told to wait is the API working as meant: not a
				// readiness problem.
				wait = max(ra.Wait, s.o.MinBackoff)
			} else {
				s.setReady(err)
			}
			s.log.Warn("poll failed, retrying", "object", o.name, "wait", wait, "err", err)
			s.pauseUntil = s.o.Now().Add(wait)
			continue
		}
		s.backoff.Reset()
		s.setReady(nil)
		s.m.requests.WithLabelValues(s.o.Vendor, o.name, "ok").Inc()
		if page.Pause > 0 {
			s.log.Info("rate limit nearly spent, pausing", "object", o.name, "pause", page.Pause)
			s.pauseUntil = s.o.Now().Add(page.Pause)
		}
		if o.token == "" {
			o.sweepStart = page.ServerTime
			if o.sweepStart.IsZero() {
				o.sweepStart = now
			}
		}
		events := make([]*pipeline.Event, 0, len(page.Records))
		for i := range page.Records {
			r := &page.Records[i]
			if s.o.Sorted {
				if c := (Cursor{Time: r.Stamp, ID: r.ID}); c.After(o.pos) {
					o.pos = c
				}
			}
			if prev, ok := o.seen[r.ID]; ok && !r.Stamp.After(prev) {
				continue
			}
			if !utf8.ValidString(r.ID) {
				// An id is never repaired: U+FFFD in place of its bytes could
				// make two records one. No vendor documents such ids.
				s.log.Error("record id is not valid UTF-8: record refused", "object", o.name, "id_bytes", len(r.ID))
				s.m.refused.WithLabelValues(s.o.Vendor, o.name).Inc()
				continue
			}
			o.seen[r.ID] = r.Stamp
			events = append(events, s.event(o.name, r))
		}
		o.token = page.Next
		if o.token == "" {
			o.sweeping = false
			o.due = s.o.Now().Add(s.o.Interval)
			if !s.o.Sorted {
				// Every record modified before the query started was in its
				// answer; later changes have later stamps.
				if c := (Cursor{Time: o.sweepStart}); c.After(o.pos) {
					o.pos = c
				}
			}
		}
		s.m.records.WithLabelValues(s.o.Vendor, o.name).Add(float64(len(events)))
		span := o.tr.Add(o.pos, len(events))
		if len(events) == 0 {
			o.tr.Ack(span, nil)
			continue
		}
		tr := o.tr
		return events, func(err error) { tr.Ack(span, err) }, nil
	}
}

// EventID is the stable identity of a record version, namespaced by the
// vendor: "salesforce:Contact:003…:2026-11-19T11:18:52Z". The stamp is the
// cursor's (system) modification time, so a record changed again gets a
// new id and a re-read of the same version the same one.
func EventID(vendor, object, id string, stamp time.Time) string {
	return vendor + ":" + object + ":" + id + ":" + stamp.UTC().Format(time.RFC3339Nano)
}

func (s *Source) event(object string, r *Record) *pipeline.Event {
	id := EventID(s.o.Vendor, object, r.ID, r.Stamp)
	key := r.Key
	if key == "" {
		key = r.ID
	}
	key = s.o.Vendor + ":" + key
	stamp := r.Stamp.UTC().Format(time.RFC3339Nano)
	env := envelope.Envelope{ID: id, Source: s.o.Vendor, Type: r.Type, AccountID: r.Account, OccurredAt: stamp, Key: key}
	if env.AccountID == "" {
		env.AccountID = s.o.Account
	}
	at := r.Stamp
	if !r.OccurredAt.IsZero() {
		at = r.OccurredAt
		env.OccurredAt, env.SystemModifiedAt = r.OccurredAt.UTC().Format(time.RFC3339Nano), stamp
	}
	// Marshalling the raw record compacts it (and escapes <, >, &), as
	// encoding/json did when it wrote the whole envelope.
	data, err := json.Marshal(json.RawMessage(r.Data))
	if err != nil { // Data is not JSON: keep it as a string rather than lose it
		data = pipeline.AppendJSONStringBytes(nil, r.Data)
	}
	env.Data = data
	payload := env.Append(nil)
	return &pipeline.Event{
		ID: id, Key: []byte(key), Time: at, Payload: payload,
		Meta: pipeline.Meta{{Key: MetaSource, Value: s.o.Vendor}, {Key: MetaObject, Value: object}, {Key: MetaRecordID, Value: r.ID}, {Key: MetaModstamp, Value: stamp}},
	}
}
