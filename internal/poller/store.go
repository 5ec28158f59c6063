package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Cursor is a position in a vendor's modification order: the last
// modification stamp handed out and, as a tie-breaker, the record ID.
type Cursor struct {
	Time time.Time `json:"time" bson:"time"`
	ID   string    `json:"id" bson:"id"`
}

// After reports whether c is strictly later than o.
func (c Cursor) After(o Cursor) bool {
	if !c.Time.Equal(o.Time) {
		return c.Time.After(o.Time)
	}
	return c.ID > o.ID
}

// Store keeps the cursor of each (connector, object).
type Store interface {
	Load(ctx context.Context, connector, object string) (Cursor, bool, error)
	Save(ctx context.Context, connector, object string, c Cursor) error
	Close(ctx context.Context) error
}

// FileStore keeps every cursor in one JSON file, rewritten atomically
// (temporary file, fsync, rename) on each Save. For local runs.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore uses path, creating its directory.
func NewFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cursor file %s: %w", path, err)
	}
	return &FileStore{path: path}, nil
}

func (f *FileStore) read() (map[string]Cursor, error) {
	m := map[string]Cursor{}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("cursor file %s: %w", f.path, err)
	}
	return m, nil
}

// Load returns the saved cursor.
func (f *FileStore) Load(_ context.Context, connector, object string) (Cursor, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return Cursor{}, false, err
	}
	c, ok := m[connector+"/"+object]
	return c, ok, nil
}

// Save replaces the cursor.
func (f *FileStore) Save(_ context.Context, connector, object string, c Cursor) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	m[connector+"/"+object] = c
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}

// Close does nothing.
func (f *FileStore) Close(context.Context) error { return nil }

// MongoStore keeps cursors in a MongoDB collection, one document per
// connector and object (_id "connector/object").
type MongoStore struct {
	client *mongo.Client
	coll   *mongo.Collection
}

type cursorDoc struct {
	ID        string    `bson:"_id"`
	Connector string    `bson:"connector"`
	Object    string    `bson:"object"`
	Time      string    `bson:"time"` // RFC 3339 with nanoseconds: exact, unlike a BSON date
	RecordID  string    `bson:"record_id"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// OpenMongoStore connects; it fails only on a malformed URI (the driver
// reconnects on its own).
func OpenMongoStore(uri, database, collection string) (*MongoStore, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("cursor store %s: %w", redact(uri), err)
	}
	if collection == "" {
		collection = "poller_cursors"
	}
	return &MongoStore{client: client, coll: client.Database(database).Collection(collection)}, nil
}

func redact(uri string) string {
	if i, j := strings.Index(uri, "://"), strings.LastIndex(uri, "@"); i >= 0 && j > i {
		return uri[:i+3] + "…" + uri[j:]
	}
	return uri
}

// Load returns the saved cursor.
func (m *MongoStore) Load(ctx context.Context, connector, object string) (Cursor, bool, error) {
	var d cursorDoc
	err := m.coll.FindOne(ctx, bson.D{{Key: "_id", Value: connector + "/" + object}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("load cursor %s/%s: %w", connector, object, err)
	}
	t, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return Cursor{}, false, fmt.Errorf("load cursor %s/%s: %w", connector, object, err)
	}
	return Cursor{Time: t, ID: d.RecordID}, true, nil
}

// Save upserts the cursor.
func (m *MongoStore) Save(ctx context.Context, connector, object string, c Cursor) error {
	_, err := m.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: connector + "/" + object}}, cursorDoc{
		ID: connector + "/" + object, Connector: connector, Object: object,
		Time: c.Time.UTC().Format(time.RFC3339Nano), RecordID: c.ID, UpdatedAt: time.Now().UTC(),
	}, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save cursor %s/%s: %w", connector, object, err)
	}
	return nil
}

// Close disconnects.
func (m *MongoStore) Close(ctx context.Context) error { return m.client.Disconnect(ctx) }
