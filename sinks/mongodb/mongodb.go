// Package mongodb is the MongoDB sink: unordered bulk writes (insert,
// replace-upsert or update-upsert by _id), idempotent in every mode, with
// per-document errors mapped back to the events they belong to.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/sluicehq/sluice/internal/reuse"
	"github.com/sluicehq/sluice/pipeline"
)

// Register adds the mongodb sink to r.
func Register(r *pipeline.Registry) {
	pipeline.RegisterSink(r, "mongodb", "documents by _id into MongoDB (insert, replace or upsert; unordered bulk writes)", func(bc pipeline.BuildContext, c *Config) (pipeline.Sink, error) {
		return New(bc, *c)
	})
}

// Sink writes events as MongoDB documents.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	client *mongo.Client
	db     *mongo.Database
	coll   *pipeline.Template
	id     *pipeline.Template // nil: the event ID
	m      *metrics
	seed   maphash.Seed

	colls sync.Map           // name -> *mongo.Collection
	ready pipeline.Readiness // nil when healthy

	insertCmd  bool                      // insert mode writes with insert commands (insert.go)
	maxCmdDocs int                       // maxCommandDocs; tests lower it
	arenas     *reuse.Pool[[]byte]       // one Write's encoded documents
	cmdBufs    *reuse.Pool[[]byte]       // one insert command
	scratch    *reuse.Pool[writeScratch] // one Write's index of ops
}

var _ interface {
	pipeline.Sink
	pipeline.Starter
	pipeline.ReadinessReporter
} = (*Sink)(nil)

// New builds the sink's client; it connects in Start.
func New(bc pipeline.BuildContext, c Config) (*Sink, error) {
	log, reg := bc.Logger, bc.Metrics
	w, err := writeConcernW(c.WriteConcern)
	if err != nil {
		return nil, fmt.Errorf("mongodb sink: write_concern: %w", err)
	}
	s := &Sink{cfg: c, log: log, coll: &c.Collection, seed: maphash.MakeSeed(), insertCmd: insertCommand(c), maxCmdDocs: maxCommandDocs}
	// Kept across garbage collections (a sync.Pool dropped them between
	// most batches): one per Write the pipeline's lanes may run at once
	// (two kept only before: the other lanes' buffers were made anew,
	// ~10 MB per 30,000 events of the bench consumer), and their commands.
	writes := keptWrites(bc.Lanes)
	s.arenas = reuse.New(writes, func() *[]byte { return new([]byte) })
	s.cmdBufs = reuse.New(writes*min(s.cfg.Parallelism, 4), func() *[]byte { return new([]byte) })
	s.scratch = reuse.New(writes, func() *writeScratch { return &writeScratch{seen: map[dupKey]int{}} })
	s.ready.Set(errors.New("mongodb sink: not started"))
	if c.ID != "" {
		if s.id, err = pipeline.ParseFieldTemplate(c.ID); err != nil {
			return nil, fmt.Errorf("mongodb sink: id: %w", err)
		}
	}
	opts := options.Client().ApplyURI(c.URI).
		// The runner owns retries, with backoff and per-event
		// classification; the driver retrying too would multiply them.
		SetRetryWrites(false).
		SetRetryReads(false).
		SetAppName("sluice")
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("mongodb sink: uri: %w", redactErr(err, c.URI))
	}
	client, err := mongo.Connect(opts) // lazy: no I/O until Start
	if err != nil {
		return nil, fmt.Errorf("mongodb sink: %w", redactErr(err, c.URI))
	}
	s.client = client
	wc := &writeconcern.WriteConcern{W: w}
	if c.Journal {
		j := true
		wc.Journal = &j
	}
	s.db = client.Database(c.Database, options.Database().SetWriteConcern(wc))
	if s.m, err = newMetrics(reg); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("mongodb sink: metrics: %w", err)
	}
	return s, nil
}

// keptWrites is how many Writes' buffers the sink keeps: one per lane
// (at least 2, for a sink built without a pipeline), at most 64.
func keptWrites(lanes int) int { return min(max(lanes, 2), 64) }

// Start connects, authenticates and pings the primary, then ensures the
// configured indexes. A wrong URI, an unreachable server or bad
// credentials fail here, so the run fails at start with a clear message.
func (s *Sink) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout.D())
	defer cancel()
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		err = fmt.Errorf("mongodb sink: cannot connect to %s within %s (check the uri's hosts, credentials and TLS options): %w",
			redactURI(s.cfg.URI), s.cfg.ConnectTimeout, redactErr(err, s.cfg.URI))
		s.ready.Set(err)
		return err
	}
	for i, ix := range s.cfg.Indexes {
		name := ix.Collection
		if name == "" {
			name = s.coll.String()
		}
		keys := bson.D{}
		for _, k := range ix.Keys {
			dir := int32(1)
			if strings.HasPrefix(k, "-") {
				dir, k = -1, k[1:]
			}
			keys = append(keys, bson.E{Key: k, Value: dir})
		}
		o := options.Index()
		if ix.Name != "" {
			o.SetName(ix.Name)
		}
		if ix.Unique {
			o.SetUnique(true)
		}
		if ix.Sparse {
			o.SetSparse(true)
		}
		if ix.ExpireAfter > 0 {
			o.SetExpireAfterSeconds(int32(ix.ExpireAfter.D() / time.Second))
		}
		if _, err := s.db.Collection(name).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys, Options: o}); err != nil {
			err = fmt.Errorf("mongodb sink: ensure indexes[%d] on %s.%s: %w", i, s.cfg.Database, name, err)
			s.ready.Set(err)
			return err
		}
	}
	s.ready.Set(nil)
	return nil
}

// Ready reports a failed start or an outage seen by the last write.
func (s *Sink) Ready() error { return s.ready.Ready() }

// Close disconnects.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongodb sink: close: %w", err)
	}
	return nil
}
