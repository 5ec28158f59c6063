package mongodb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/pipeline"
)

var _ pipeline.Auditor = (*Config)(nil)

// Audit reads the collection back by _id. It needs a fixed collection, not
// a template.
func (c *Config) Audit(_ context.Context, label string) (pipeline.StoreAudit, error) {
	if !c.Collection.Static() {
		return nil, fmt.Errorf("the audit needs a fixed collection, not the template %q", c.Collection.String())
	}
	client, err := mongo.Connect(options.Client().ApplyURI(c.URI).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return nil, redactErr(err, c.URI)
	}
	return &mongoAudit{label: label, coll: client.Database(c.Database).Collection(c.Collection.String())}, nil
}

type mongoAudit struct {
	label string
	coll  *mongo.Collection
}

func (m *mongoAudit) Name() string     { return m.label }
func (m *mongoAudit) Idempotent() bool { return true }

// Reset drops the collection.
func (m *mongoAudit) Reset(ctx context.Context) error { return m.coll.Drop(ctx) }

func (m *mongoAudit) Counts(ctx context.Context, _ map[string]int) (map[string]int, error) {
	cur, err := m.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	out := map[string]int{}
	for cur.Next(ctx) {
		var doc struct {
			ID any `bson:"_id"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		out[fmt.Sprint(doc.ID)]++
	}
	return out, cur.Err()
}

var _ pipeline.Cleaner = (*mongoAudit)(nil)

// Target is the database and collection the audit reads.
func (m *mongoAudit) Target() string {
	return "collection " + m.coll.Database().Name() + "." + m.coll.Name()
}

// Drop drops the collection when its name contains stamp (the bench's
// per-run collection), then disconnects the audit's client.
func (m *mongoAudit) Drop(ctx context.Context, stamp string) (bool, error) {
	defer m.coll.Database().Client().Disconnect(context.WithoutCancel(ctx)) //nolint:errcheck // the drop's error is the one that matters
	if stamp == "" || !strings.Contains(m.coll.Name(), stamp) {
		return false, nil
	}
	if err := m.coll.Drop(ctx); err != nil {
		return false, fmt.Errorf("drop %s: %w", m.Target(), err)
	}
	return true, nil
}
