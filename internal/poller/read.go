package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/ackorder"
	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
)

// This file is the read path: which object to query, one page of it, and
// its records as events.

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

// Read returns the next page's new records as a batch. Each turn of its
// loop waits for an object to be due (nextObject), fetches one page of it,
// and either schedules a retry (fetchFailed) or turns the page into a batch
// (takePage); a page with no new record is settled at once.
func (s *Source) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if err := s.Start(ctx); err != nil {
		return nil, nil, err
	}
	for {
		o, now, err := s.nextObject(ctx)
		if err != nil {
			return nil, nil, err
		}
		if o == nil {
			continue
		}
		o.beginSweep(s.o.Overlap)
		page, err := s.o.Client.Fetch(ctx, Query{Object: o.name, Since: o.since, Token: o.token})
		if err != nil {
			if err := s.fetchFailed(ctx, o, err); err != nil {
				return nil, nil, err
			}
			continue
		}
		events, span := s.takePage(o, page, now)
		if len(events) == 0 {
			o.tr.Ack(span, nil)
			continue
		}
		tr := o.tr
		return events, func(err error) { tr.Ack(span, err) }, nil
	}
}

// nextObject waits out a pause a rate limit or a failure asked for, or
// the time until an object is due, and returns the object to query with
// the time it was picked. A nil object and error mean: look again.
func (s *Source) nextObject(ctx context.Context) (*object, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, err
	}
	now := s.o.Now()
	if d := s.pauseUntil.Sub(now); d > 0 {
		if err := s.o.Sleep(ctx, d); err != nil {
			return nil, time.Time{}, err
		}
		s.pauseUntil = time.Time{}
		return nil, time.Time{}, nil
	}
	o, wait := s.pick(now)
	if o == nil {
		if err := s.o.Sleep(ctx, wait); err != nil {
			return nil, time.Time{}, err
		}
	}
	return o, now, nil
}

// beginSweep starts a query of the object at its position less the
// overlap, unless one is under way, and forgets the records seen before
// the new query's start.
func (o *object) beginSweep(overlap time.Duration) {
	if o.sweeping {
		return
	}
	o.sweeping, o.token, o.sweepStart = true, "", time.Time{}
	o.since = o.pos.Time.Add(-overlap)
	if o.pos.Time.IsZero() {
		o.since = time.Time{}
	}
	for id, t := range o.seen {
		if t.Before(o.since) {
			delete(o.seen, id)
		}
	}
}

// fetchFailed counts a failed fetch and schedules its retry (after the
// backoff, or the wait a rate limit named); it returns the error that ends
// Read: the context's, or a permanent failure.
func (s *Source) fetchFailed(ctx context.Context, o *object, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ra, rateLimited := errors.AsType[*RetryAfterError](err)
	result := "error"
	if rateLimited {
		result = "rate_limited"
	}
	s.m.requests.WithLabelValues(s.o.Vendor, o.name, result).Inc()
	if pipeline.IsPermanent(err) {
		s.setReady(err)
		return fmt.Errorf("%s %s: %w", s.o.Vendor, o.name, err)
	}
	wait := s.backoff.Next()
	if rateLimited {
		// Being told to wait is the API working as meant: not a
		// readiness problem.
		wait = max(ra.Wait, s.o.MinBackoff)
	} else {
		s.setReady(err)
	}
	s.log.Warn("poll failed, retrying", "object", o.name, "wait", wait, "err", err)
	s.pauseUntil = s.o.Now().Add(wait)
	return nil
}

// takePage records a successful fetch (picked at now), turns the page's
// new records into events, moves the object's query and position on, and
// adds the batch to the object's ack tracker.
func (s *Source) takePage(o *object, page Page, now time.Time) ([]*pipeline.Event, *ackorder.Span[Cursor]) {
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
	events := s.newEvents(o, page.Records)
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
	return events, o.tr.Add(o.pos, len(events))
}

// newEvents turns the records not handed out before into events; on a
// sorted query it moves the object's position to the last record.
func (s *Source) newEvents(o *object, records []Record) []*pipeline.Event {
	events := make([]*pipeline.Event, 0, len(records))
	for i := range records {
		r := &records[i]
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
	return events
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
