package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/pipeline"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

// OrderAudit is the Kinesis side of a chaos audit: whether every key's
// records of a parent shard were processed before any of its records of
// a child shard, and whether any checkpoint moved back.
//
// How the order is checked: the tail (kinesisTail) knows every record's
// shard, partition key and event id. A MongoDB sink in mode insert keeps
// the document of an id's first write, so its ingested_at (stamped by the
// enrich step when the event was processed) is when the event was first
// processed, redeliveries notwithstanding. For each parent → child pair
// and each key with records in both, the latest first-processing time of
// the key's parent records must come before the earliest of its child
// records. Ids sent more than once (the workload's duplicates) are left
// out: a duplicate's document carries the time of its first copy, which
// may be in the other shard.
type OrderAudit struct {
	Pairs      int      `json:"parent_child_pairs"`
	Keys       int      `json:"keys_checked"` // pair and key with records in both
	Violations int      `json:"out_of_order"` // of Keys
	Examples   []string `json:"examples,omitempty"`
	Skipped    string   `json:"skipped,omitempty"` // why the order was not checked
	// Regressions are checkpoints seen moving back during the run.
	Regressions []string `json:"checkpoint_regressions,omitempty"`
}

// OK reports whether no key was out of order and no checkpoint moved back.
func (a *OrderAudit) OK() bool { return a == nil || a.Violations == 0 && len(a.Regressions) == 0 }

// Line is the Kinesis audit line.
func (a *OrderAudit) Line() string {
	order := fmt.Sprintf("%d parent→child shard pairs, %d keys with records in both, %d out of order", a.Pairs, a.Keys, a.Violations)
	if a.Skipped != "" {
		order = "not checked: " + a.Skipped
	}
	return fmt.Sprintf("kinesis audit: order %s; checkpoints moved back %d", order, len(a.Regressions))
}

// orderSource finds the consumer's MongoDB sink in mode insert, whose
// documents' ingested_at the order check reads.
func orderSource(cfg *pipeline.Config) (*mongosink.Config, string) {
	for _, s := range cfg.Sinks {
		if c, ok := s.Spec.Config.(*mongosink.Config); ok && c.Mode == mongosink.ModeInsert && c.Collection.Static() {
			return c, ""
		}
	}
	return nil, "needs a mongodb sink with mode: insert and a fixed collection (it keeps each id's first write, stamped with ingested_at by the enrich step)"
}

// processedAt reads each stored document's ingested_at.
func processedAt(ctx context.Context, c *mongosink.Config) (map[string]time.Time, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(c.URI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("order check: %w", err)
	}
	defer client.Disconnect(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	coll := client.Database(c.Database).Collection(c.Collection.String())
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "ingested_at", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("order check: read %s.%s: %w", c.Database, c.Collection.String(), err)
	}
	defer cur.Close(ctx)
	out := map[string]time.Time{}
	for cur.Next(ctx) {
		var doc struct {
			ID any `bson:"_id"`
			At any `bson:"ingested_at"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, fmt.Errorf("order check: %w", err)
		}
		switch v := doc.At.(type) {
		case string:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				out[fmt.Sprint(doc.ID)] = t
			}
		case bson.DateTime:
			out[fmt.Sprint(doc.ID)] = v.Time()
		}
	}
	return out, cur.Err()
}

// checkOrder compares, per parent → child pair and key, when the records
// were first processed (see OrderAudit).
func (t *kinesisTail) checkOrder(ctx context.Context, cfg *pipeline.Config) *OrderAudit {
	a := &OrderAudit{Regressions: t.Regressions}
	sink, why := orderSource(cfg)
	if sink == nil {
		a.Skipped = why
		return a
	}
	at, err := processedAt(ctx, sink)
	if err != nil {
		a.Skipped = err.Error()
		return a
	}
	if len(at) == 0 {
		a.Skipped = "the stored documents carry no ingested_at (the enrich step stamps it)"
		return a
	}
	copies := map[string]int{}
	for _, id := range t.order {
		for _, r := range t.shards[id].recs {
			copies[r.id]++
		}
	}
	// times returns, per key, the earliest or latest first-processing time
	// of a shard's records sent once.
	times := func(s *tailShard, latest bool) map[string]time.Time {
		out := map[string]time.Time{}
		for _, r := range s.recs {
			ts, ok := at[r.id]
			if !ok || copies[r.id] != 1 {
				continue
			}
			if cur, seen := out[r.key]; !seen || latest && ts.After(cur) || !latest && ts.Before(cur) {
				out[r.key] = ts
			}
		}
		return out
	}
	for _, id := range t.order {
		child := t.shards[id]
		var first map[string]time.Time
		for _, p := range child.parents {
			parent := t.shards[p]
			if parent == nil {
				continue // before the stream's retention: not read by anyone
			}
			if first == nil {
				first = times(child, false)
			}
			a.Pairs++
			for key, last := range times(parent, true) {
				f, ok := first[key]
				if !ok {
					continue
				}
				a.Keys++
				if !f.After(last) {
					a.Violations++
					if len(a.Examples) < 5 {
						a.Examples = append(a.Examples, fmt.Sprintf("key %s: a record of child %s processed at %s, one of parent %s at %s",
							key, id, f.Format(time.RFC3339Nano), p, last.Format(time.RFC3339Nano)))
					}
				}
			}
		}
	}
	if a.Pairs == 0 {
		a.Skipped = "no shard was split during the run: no parent and child to compare"
	}
	return a
}

// orderSummary is the report's order lines.
func orderSummary(a *OrderAudit) string {
	if a == nil {
		return ""
	}
	lines := []string{a.Line()}
	for _, e := range a.Examples {
		lines = append(lines, "  out of order: "+e)
	}
	for _, r := range a.Regressions {
		lines = append(lines, "  moved back: "+r)
	}
	return strings.Join(lines, "\n")
}
