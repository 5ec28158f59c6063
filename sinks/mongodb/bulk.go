package mongodb

// bulk.go sends one chunk and maps the result back to its events: per-
// document write errors, write concern errors, whole-command failures.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/pipeline"
)

// bulk writes one chunk and records each op's outcome in errs.
func (s *Sink) bulk(ctx context.Context, coll *mongo.Collection, ops []op, errs []error) {
	if s.cfg.Mode == ModeUpsert {
		var err error
		if ops, err = s.skipApplied(ctx, coll, ops); err != nil {
			for _, o := range ops {
				errs[o.index] = err
			}
			s.m.failedN(false, len(ops))
			return
		}
		if len(ops) == 0 {
			return
		}
	}
	if s.insertCmd {
		start := time.Now()
		n, err := s.insert(ctx, coll, ops)
		s.m.latency.Observe(time.Since(start).Seconds())
		s.m.count(&mongo.BulkWriteResult{InsertedCount: n})
		s.settle(ops, coll.Name(), err, errs)
		return
	}
	models := make([]mongo.WriteModel, len(ops))
	for i, o := range ops {
		models[i] = o.model
	}
	start := time.Now()
	res, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	s.m.latency.Observe(time.Since(start).Seconds())
	if res != nil {
		s.m.count(res)
	}
	if dups := s.settle(ops, coll.Name(), err, errs); len(dups) > 0 {
		s.checkApplied(ctx, coll, dups, errs)
	}
}

// settle records each op's outcome of a bulk write that returned err in
// errs, and returns the upserts that hit a duplicate key on _id, which
// checkApplied settles.
func (s *Sink) settle(ops []op, collName string, err error, errs []error) []op {
	if err == nil {
		s.ready.Set(nil)
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		// The command as a whole failed: no op is known to be stored.
		err = fmt.Errorf("bulk write of %d documents to %s.%s: %w", len(ops), s.cfg.Database, collName, err)
		if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			s.ready.Set(err)
		}
		for _, o := range ops {
			errs[o.index] = err
		}
		s.m.failedN(false, len(ops))
		return nil
	}
	s.ready.Set(nil)
	failed := make([]bool, len(ops))
	var dups []op
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(ops) {
			continue
		}
		o := ops[we.Index]
		failed[we.Index] = true
		switch {
		case isDuplicateKey(we.WriteError) && s.cfg.Mode == ModeInsert && onID(we.WriteError):
			// The event is already stored: the write succeeded earlier.
			s.m.docs.WithLabelValues("duplicate").Inc()
		case isDuplicateKey(we.WriteError) && s.cfg.Mode == ModeUpsert && onID(we.WriteError):
			dups = append(dups, o)
		case isDuplicateKey(we.WriteError) && s.cfg.Mode == ModeReplace && onID(we.WriteError):
			// Two upserts of a new _id raced; the next attempt replaces.
			errs[o.index] = fmt.Errorf("%s.%s _id %q: replace raced with another insert: %w", s.cfg.Database, collName, o.id, we.WriteError)
			s.m.failed(false)
		default:
			werr := classifyWriteError(fmt.Errorf("%s.%s _id %q: %w", s.cfg.Database, collName, o.id, we.WriteError), we.WriteError)
			errs[o.index] = werr
			s.m.failed(pipeline.IsPermanent(werr))
		}
	}
	if bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		// Applied, maybe, but not acknowledged as durable: the write is
		// idempotent, so retrying is the way to be sure.
		cause := fmt.Errorf("bulk write to %s.%s: %w", s.cfg.Database, collName, err)
		if bwe.WriteConcernError != nil {
			cause = fmt.Errorf("write concern not satisfied on %s.%s: %s", s.cfg.Database, collName, bwe.WriteConcernError.Error())
		}
		for i, o := range ops {
			if !failed[i] {
				errs[o.index] = cause
				s.m.failed(false)
			}
		}
		for _, o := range dups {
			errs[o.index] = cause
		}
		return nil
	}
	return dups
}
