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
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

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
	s := &Sink{cfg: c, log: log, coll: &c.Collection, seed: maphash.MakeSeed()}
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

// op is one event's write.
type op struct {
	index int    // in the batch
	id    string // _id
	event *pipeline.Event
	model mongo.WriteModel
}

// Write turns each event into one write model and sends them as unordered
// bulk writes: one per collection and max_batch operations, run up to
// parallelism at once. Events failing before the round trip (no body, too
// large, a template field missing) fail permanently on their own.
func (s *Sink) Write(ctx context.Context, batch []*pipeline.Event) error {
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout.D())
	defer cancel()
	errs := make([]error, len(batch)) // per event; nil = stored
	byColl := map[string][]op{}
	var order []string
	// The same event twice in one batch (a duplicate the source sent
	// again before the first was acked) is written once and both copies
	// get its outcome. In upsert mode the second copy would otherwise hit
	// the replay guard's duplicate-key error.
	type dupKey struct{ coll, id, event string }
	seen := make(map[dupKey]int, len(batch))
	dupOf := map[int]int{}
	for i, ev := range batch {
		name, o, err := s.build(ev)
		if err != nil {
			errs[i] = pipeline.Permanent(err)
			s.m.failed(true)
			continue
		}
		k := dupKey{name, o.id, ev.ID}
		if first, ok := seen[k]; ok {
			dupOf[i] = first
			s.m.docs.WithLabelValues("duplicate").Inc()
			continue
		}
		seen[k] = i
		o.index = i
		if _, seen := byColl[name]; !seen {
			order = append(order, name)
		}
		byColl[name] = append(byColl[name], o)
	}
	var tasks []task
	for _, name := range order {
		tasks = append(tasks, s.split(name, byColl[name])...)
	}
	sem := make(chan struct{}, s.cfg.Parallelism)
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			coll := s.collection(t.coll)
			for _, chunk := range t.chunks {
				s.bulk(ctx, coll, chunk, errs)
			}
		}()
	}
	wg.Wait()
	for i, first := range dupOf {
		errs[i] = errs[first]
	}
	return pipeline.FoldEventErrors(errs)
}

// task is one goroutine's work: chunks of one collection written in order.
type task struct {
	coll   string
	chunks [][]op
}

// split cuts one collection's ops into chunks of at most max_batch. Ops on
// the same _id keep their order: they hash to the same task, whose chunks
// run one after the other.
func (s *Sink) split(coll string, ops []op) []task {
	limit := s.cfg.MaxBatch
	if len(ops) <= limit {
		return []task{{coll: coll, chunks: [][]op{ops}}}
	}
	n := min((len(ops)+limit-1)/limit, s.cfg.Parallelism)
	buckets := make([][]op, n)
	for _, o := range ops {
		b := maphash.String(s.seed, o.id) % uint64(n)
		buckets[b] = append(buckets[b], o)
	}
	tasks := make([]task, 0, n)
	for _, b := range buckets {
		if len(b) == 0 {
			continue
		}
		t := task{coll: coll}
		for len(b) > limit {
			t.chunks = append(t.chunks, b[:limit:limit])
			b = b[limit:]
		}
		t.chunks = append(t.chunks, b)
		tasks = append(tasks, t)
	}
	return tasks
}

func (s *Sink) collection(name string) *mongo.Collection {
	if c, ok := s.colls.Load(name); ok {
		return c.(*mongo.Collection)
	}
	c, _ := s.colls.LoadOrStore(name, s.db.Collection(name))
	return c.(*mongo.Collection)
}

// build makes ev's collection name and write model.
func (s *Sink) build(ev *pipeline.Event) (string, op, error) {
	if len(ev.Body) == 0 {
		return "", op{}, errNoBody
	}
	// Before anything recursive (the validator, the BSON encoders) walks it.
	if err := pipeline.CheckJSONDepth(ev.Body, pipeline.DefaultMaxJSONDepth); err != nil {
		return "", op{}, fmt.Errorf("body of event %s: %w", ev.ID, err)
	}
	name, err := s.coll.RenderString(ev)
	if err != nil {
		return "", op{}, fmt.Errorf("collection: %w", err)
	}
	if name == "" || strings.ContainsAny(name, "$\x00") || strings.HasPrefix(name, "system.") {
		return "", op{}, fmt.Errorf("collection: %q is not a valid collection name", name)
	}
	id := ev.ID
	if s.id != nil {
		if id, err = s.id.RenderString(ev); err != nil {
			return "", op{}, fmt.Errorf("id: %w", err)
		}
	}
	if id == "" {
		return "", op{}, errors.New("event has an empty id")
	}
	o := op{id: id, event: ev}
	var raw bson.Raw
	if obj, ok := s.directBody(ev); ok {
		if raw, err = appendFullDoc(make([]byte, 0, len(ev.Body)+len(id)+16), id, obj); err != nil {
			return "", op{}, fmt.Errorf("event %s cannot be encoded as BSON: %w", ev.ID, err)
		}
		if err := s.checkSize(ev, raw); err != nil {
			return "", op{}, err
		}
	}
	var body bson.D
	if raw == nil {
		if body, err = bodyDoc(ev); err != nil {
			return "", op{}, err
		}
	}
	switch s.cfg.Mode {
	case ModeInsert, ModeReplace:
		if raw == nil {
			if raw, err = s.marshal(ev, fullDoc(id, body)); err != nil {
				return "", op{}, err
			}
		}
		if s.cfg.Mode == ModeInsert {
			o.model = mongo.NewInsertOneModel().SetDocument(raw)
		} else {
			o.model = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(raw).SetUpsert(true)
		}
	case ModeUpsert:
		upd, err := s.cfg.Update.updateDoc(ev, body)
		if err != nil {
			return "", op{}, err
		}
		raw, err := s.marshal(ev, upd)
		if err != nil {
			return "", op{}, err
		}
		o.model = mongo.NewUpdateOneModel().SetFilter(s.cfg.Update.upsertFilter(id, ev)).SetUpdate(raw).SetUpsert(true)
	}
	return name, o, nil
}

// marshal encodes d once, so the size limit is checked here and the driver
// sends the bytes as they are.
func (s *Sink) marshal(ev *pipeline.Event, d bson.D) (bson.Raw, error) {
	raw, err := bson.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("event %s cannot be encoded as BSON: %w", ev.ID, err)
	}
	return raw, s.checkSize(ev, raw)
}

// directBody is ev's body as a plain JSON object when the write can be
// encoded straight from it (insert, replace); upserts build a bson.D.
func (s *Sink) directBody(ev *pipeline.Event) (gjson.Result, bool) {
	if s.cfg.Mode == ModeUpsert {
		return gjson.Result{}, false
	}
	return viewPlainObject(ev.Body)
}

func (s *Sink) checkSize(ev *pipeline.Event, raw []byte) error {
	if len(raw) > int(s.cfg.MaxDocumentBytes) {
		return fmt.Errorf("event %s is %d bytes as BSON, over max_document_bytes (%d)", ev.ID, len(raw), s.cfg.MaxDocumentBytes)
	}
	return nil
}

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

// Close disconnects.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongodb sink: close: %w", err)
	}
	return nil
}

func isDuplicateKey(we mongo.WriteError) bool {
	return we.Code == 11000 || we.Code == 11001 || we.Code == 12582
}

// onID reports whether a duplicate-key error is about _id rather than a
// unique secondary index, which would be a real conflict.
func onID(we mongo.WriteError) bool {
	if kp, err := we.Details.LookupErr("keyPattern"); err == nil {
		if d, ok := kp.DocumentOK(); ok {
			elems, _ := d.Elements()
			return len(elems) == 1 && elems[0].Key() == "_id"
		}
	}
	// Servers that send no keyPattern name the index in the message.
	return strings.Contains(we.Message, "_id_") || strings.Contains(we.Message, "index: _id") || !strings.Contains(we.Message, "index:")
}

// retryableCodes are per-document errors a later attempt can get past:
// elections, conflicts, shutdowns, timeouts, throttling.
var retryableCodes = map[int]bool{
	6: true, 7: true, 24: true, 46: true, 50: true, 64: true, 89: true, 91: true,
	112: true, 117: true, 133: true, 134: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true, 16500: true,
}

// classifyWriteError marks per-document errors that the same document will
// hit again (validation, bad field names, too large) as permanent.
func classifyWriteError(err error, we mongo.WriteError) error {
	if retryableCodes[we.Code] {
		return err
	}
	return pipeline.Permanent(err)
}

// redactURI keeps the scheme and hosts of a connection string.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if i := strings.LastIndex(uri, "@"); i >= 0 {
			return "mongodb://…@" + uri[i+1:]
		}
		return uri
	}
	return u.Scheme + "://" + u.Host
}

// redactErr removes the URI's password from an error message.
func redactErr(err error, uri string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(uri)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}
