package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ShardEnd is the checkpoint of a shard read to its end: its children may
// be read.
const ShardEnd = "SHARD_END"

// Lease is one shard's ownership and checkpoint.
type Lease struct {
	Shard      string
	Parents    []string
	Owner      string
	Expires    time.Time
	Checkpoint string // the last sequence number acked, ShardEnd, or ""
}

// Expired reports whether nobody holds the lease at now.
func (l Lease) Expired(now time.Time) bool { return l.Owner == "" || !now.Before(l.Expires) }

// LeaseStore keeps leases. Every write is conditional on the owner, so a
// consumer that lost a lease can neither renew nor checkpoint it.
type LeaseStore interface {
	// Ensure creates leases for shards that have none.
	Ensure(ctx context.Context, shards []Lease) error
	List(ctx context.Context) ([]Lease, error)
	// Acquire takes the lease if it is free or expired, or, when from is
	// not empty, if from still holds it (stealing).
	Acquire(ctx context.Context, shard, owner, from string, until time.Time) (bool, error)
	// Renew extends a lease owner still holds.
	Renew(ctx context.Context, shard, owner string, until time.Time) (bool, error)
	// Checkpoint records position for a lease owner still holds.
	Checkpoint(ctx context.Context, shard, owner, position string) (bool, error)
	// Release gives the lease up.
	Release(ctx context.Context, shard, owner string) error
}

// MongoLeases is the LeaseStore in a MongoDB collection, one document per
// group, stream and shard.
type MongoLeases struct {
	client *mongo.Client
	coll   *mongo.Collection
	prefix string // "group/stream/"
	group  string
	stream string
}

type leaseDoc struct {
	ID         string   `bson:"_id"`
	Group      string   `bson:"group"`
	Stream     string   `bson:"stream"`
	Shard      string   `bson:"shard"`
	Parents    []string `bson:"parents"`
	Owner      string   `bson:"owner"`
	Expires    int64    `bson:"expires_ms"`
	Checkpoint string   `bson:"checkpoint"`
}

// OpenMongoLeases connects; it does not fail when the server is down (the
// driver reconnects), only on a malformed URI.
func OpenMongoLeases(c MongoCheckpoint, group, stream string) (*MongoLeases, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(c.URI).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("lease store %s: %w", redact(c.URI), err)
	}
	coll := c.Collection
	if coll == "" {
		coll = "kinesis_leases"
	}
	return &MongoLeases{client: client, coll: client.Database(c.Database).Collection(coll), prefix: group + "/" + stream + "/", group: group, stream: stream}, nil
}

func redact(uri string) string {
	if i, j := strings.Index(uri, "://"), strings.LastIndex(uri, "@"); i >= 0 && j > i {
		return uri[:i+3] + "…" + uri[j:]
	}
	return uri
}

// Ping checks the store answers.
func (m *MongoLeases) Ping(ctx context.Context) error { return m.client.Ping(ctx, nil) }

// Close disconnects.
func (m *MongoLeases) Close(ctx context.Context) error { return m.client.Disconnect(ctx) }

// Ensure inserts missing leases; existing ones are left as they are.
func (m *MongoLeases) Ensure(ctx context.Context, shards []Lease) error {
	for _, s := range shards {
		_, err := m.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.prefix + s.Shard}},
			bson.D{{Key: "$setOnInsert", Value: bson.D{
				{Key: "group", Value: m.group}, {Key: "stream", Value: m.stream}, {Key: "shard", Value: s.Shard},
				{Key: "parents", Value: nonNil(s.Parents)}, {Key: "owner", Value: ""}, {Key: "expires_ms", Value: int64(0)}, {Key: "checkpoint", Value: ""},
			}}}, options.UpdateOne().SetUpsert(true))
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("ensure lease of shard %s: %w", s.Shard, err)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// List returns every lease of the group and stream.
func (m *MongoLeases) List(ctx context.Context) ([]Lease, error) {
	cur, err := m.coll.Find(ctx, bson.D{{Key: "group", Value: m.group}, {Key: "stream", Value: m.stream}})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	var docs []leaseDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	out := make([]Lease, len(docs))
	for i, d := range docs {
		out[i] = Lease{Shard: d.Shard, Parents: d.Parents, Owner: d.Owner, Expires: time.UnixMilli(d.Expires), Checkpoint: d.Checkpoint}
	}
	return out, nil
}

// Acquire sets the owner when the lease is free, expired, already ours, or
// (stealing) still held by from.
func (m *MongoLeases) Acquire(ctx context.Context, shard, owner, from string, until time.Time) (bool, error) {
	id := bson.D{{Key: "_id", Value: m.prefix + shard}}
	var filter bson.D
	if from != "" {
		filter = append(id, bson.E{Key: "owner", Value: from})
	} else {
		filter = append(id, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "owner", Value: ""}},
			bson.D{{Key: "owner", Value: owner}},
			bson.D{{Key: "expires_ms", Value: bson.D{{Key: "$lt", Value: time.Now().UnixMilli()}}}},
		}})
	}
	res, err := m.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: owner}, {Key: "expires_ms", Value: until.UnixMilli()}}}})
	if err != nil {
		return false, fmt.Errorf("acquire lease of shard %s: %w", shard, err)
	}
	return res.MatchedCount == 1, nil
}

// Renew extends the lease if owner still holds it.
func (m *MongoLeases) Renew(ctx context.Context, shard, owner string, until time.Time) (bool, error) {
	return m.ownedUpdate(ctx, shard, owner, bson.D{{Key: "expires_ms", Value: until.UnixMilli()}}, "renew")
}

// Checkpoint records position if owner still holds the lease.
func (m *MongoLeases) Checkpoint(ctx context.Context, shard, owner, position string) (bool, error) {
	return m.ownedUpdate(ctx, shard, owner, bson.D{{Key: "checkpoint", Value: position}}, "checkpoint")
}

// Release frees the lease if owner holds it.
func (m *MongoLeases) Release(ctx context.Context, shard, owner string) error {
	_, err := m.ownedUpdate(ctx, shard, owner, bson.D{{Key: "owner", Value: ""}, {Key: "expires_ms", Value: int64(0)}}, "release")
	return err
}

func (m *MongoLeases) ownedUpdate(ctx context.Context, shard, owner string, set bson.D, what string) (bool, error) {
	res, err := m.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.prefix + shard}, {Key: "owner", Value: owner}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, fmt.Errorf("%s lease of shard %s: %w", what, shard, err)
	}
	return res.MatchedCount == 1, nil
}

var errLeaseLost = errors.New("lease lost to another consumer")

// Delete removes every lease of the group and stream (the bench deletes
// its run's leases with its stream) and returns how many it removed.
func (m *MongoLeases) Delete(ctx context.Context) (int64, error) {
	res, err := m.coll.DeleteMany(ctx, bson.D{{Key: "group", Value: m.group}, {Key: "stream", Value: m.stream}})
	if err != nil {
		return 0, fmt.Errorf("delete the leases of %s: %w", m.prefix, err)
	}
	return res.DeletedCount, nil
}

// Collection is the database and collection the leases are in.
func (m *MongoLeases) Collection() string { return m.coll.Database().Name() + "." + m.coll.Name() }

// DropCollection drops the whole lease collection.
func (m *MongoLeases) DropCollection(ctx context.Context) error {
	if err := m.coll.Drop(ctx); err != nil {
		return fmt.Errorf("drop the lease collection %s: %w", m.Collection(), err)
	}
	return nil
}
