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
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/ackorder"
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
	// Store is handed over to the source: Close closes it, and so does
	// New when it fails.
	Store  Store
	Client Client
	Logger *slog.Logger
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

// New returns a source; Start (or the first Read) loads the cursors. It
// takes o.Store over: when New fails it closes the store, so a failed
// build leaves no client connected.
func New(o Options) (_ *Source, err error) {
	defer func() {
		if err != nil && o.Store != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if cerr := o.Store.Close(ctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close the cursor store: %w", cerr))
			}
		}
	}()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = pipeline.Sleep
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
