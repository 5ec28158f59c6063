package mongodb

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// applied.go is upsert mode's redelivery guard: which events a document has
// already applied.

// skipApplied drops the upserts whose event is already in its document's
// applied list: redeliveries. One indexed query per bulk that, outside
// replays, returns nothing. The upsert filter guards the same thing on its
// own (see upsertFilter); asking first keeps replays from turning into
// duplicate-key errors, and some MongoDB-compatible servers (FerretDB 1.x)
// stop an update command at its first error even when it is unordered.
func (s *Sink) skipApplied(ctx context.Context, coll *mongo.Collection, ops []op) ([]op, error) {
	ids := make(bson.A, 0, len(ops))
	evs := make(bson.A, 0, len(ops))
	for _, o := range ops {
		ids = append(ids, o.id)
		evs = append(evs, o.event.ID)
	}
	field := s.cfg.Update.AppliedField
	start := time.Now()
	applied, err := s.appliedLists(ctx, coll, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}},
		{Key: field, Value: bson.D{{Key: "$in", Value: evs}}},
	})
	s.m.check.Observe(time.Since(start).Seconds())
	if err != nil {
		return ops, fmt.Errorf("check which events %s.%s already applied: %w", s.cfg.Database, coll.Name(), err)
	}
	if len(applied) == 0 {
		return ops, nil
	}
	kept := ops[:0:0]
	for _, o := range ops {
		if applied[o.id][o.event.ID] {
			s.m.docs.WithLabelValues("duplicate").Inc()
			continue
		}
		kept = append(kept, o)
	}
	return kept, nil
}

// appliedLists returns, per _id of the documents filter matches, the set
// of event ids in its applied list.
func (s *Sink) appliedLists(ctx context.Context, coll *mongo.Collection, filter bson.D) (map[string]map[string]bool, error) {
	field := s.cfg.Update.AppliedField
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: field, Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make(map[string]map[string]bool, len(docs))
	for _, d := range docs {
		id, _ := d.Lookup("_id").StringValueOK()
		arr, _ := d.Lookup(field).ArrayOK()
		vals, _ := arr.Values()
		set := make(map[string]bool, len(vals))
		for _, v := range vals {
			if str, ok := v.StringValueOK(); ok {
				set[str] = true
			}
		}
		out[id] = set
	}
	return out, nil
}

// checkApplied settles upserts that hit a duplicate key: the filter did not
// match because the event is already in the document's applied list (a
// redelivery: success), or because another writer inserted the document
// between our match and our insert (a race: retry).
func (s *Sink) checkApplied(ctx context.Context, coll *mongo.Collection, dups []op, errs []error) {
	ids := make(bson.A, 0, len(dups))
	for _, o := range dups {
		ids = append(ids, o.id)
	}
	applied, err := s.appliedLists(ctx, coll, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	for _, o := range dups {
		switch {
		case err != nil:
			errs[o.index] = fmt.Errorf("upsert of _id %q hit a duplicate key and checking whether event %s was applied failed: %w", o.id, o.event.ID, err)
			s.m.failed(false)
		case applied[o.id][o.event.ID]:
			s.m.docs.WithLabelValues("duplicate").Inc()
		default:
			errs[o.index] = fmt.Errorf("upsert of _id %q raced with another insert of the same _id; retrying", o.id)
			s.m.failed(false)
		}
	}
}
