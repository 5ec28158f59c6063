package mongodb

// write.go turns a batch into write operations: per-event documents or write
// models, grouped by collection and cut into chunks of max_batch.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sluicehq/sluice/pipeline"
)

// op is one event's write.
type op struct {
	index int    // in the batch
	id    string // _id
	event *pipeline.Event
	model mongo.WriteModel // replace and upsert modes
	doc   bson.Raw         // insert mode, sent by insert: may point into the Write's arena
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
	// The documents of insert and replace are encoded into one buffer
	// kept across batches; they are done with when Write returns.
	arena := s.arenas.Get()
	defer s.putArena(arena)
	*arena = (*arena)[:0]
	sc := s.scratch.Get()
	defer s.putScratch(sc, len(batch))
	byColl := map[string][]op{}
	var order []string
	// The same event twice in one batch (a duplicate the source sent
	// again before the first was acked) is written once and both copies
	// get its outcome. In upsert mode the second copy would otherwise hit
	// the replay guard's duplicate-key error.
	seen := sc.seen
	dupOf := map[int]int{}
	for i, ev := range batch {
		name, o, err := s.build(ev, arena)
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
		ops, known := byColl[name]
		if !known {
			order = append(order, name)
			if len(order) == 1 { // the first collection's ops go into the kept slice
				ops = sc.ops[:0]
			}
		}
		byColl[name] = append(ops, o)
	}
	if len(order) > 0 {
		sc.ops = byColl[order[0]]
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

// dupKey is one write's identity in a batch: collection, _id and event id.
type dupKey struct{ coll, id, event string }

// writeScratch is what one Write indexes its ops in, kept across Writes:
// the map of writes seen and the first collection's ops (at batch size,
// ~60 KB and ~36 KB a batch of 500 when made anew).
type writeScratch struct {
	seen map[dupKey]int
	ops  []op
}

// putScratch keeps sc for the next Write, holding no event, unless an
// outsized batch of n events grew it.
func (s *Sink) putScratch(sc *writeScratch, n int) {
	if n > 1<<16 {
		return
	}
	clear(sc.seen)
	clear(sc.ops[:cap(sc.ops)])
	sc.ops = sc.ops[:0]
	s.scratch.Put(sc)
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

// putArena keeps a Write's document buffer for the next one, unless one
// outsized batch grew it.
func (s *Sink) putArena(arena *[]byte) {
	if cap(*arena) <= 64<<20 {
		s.arenas.Put(arena)
	}
}

// build makes ev's collection name and write model (insert mode: its
// document). A document encoded straight from JSON is appended to *arena
// and points into it: when a later append moves the buffer, the document
// keeps the old array, which nothing writes again.
//
// A body nested deeper than pipeline.DefaultMaxJSONDepth fails before
// anything recursive (the validator, the BSON encoders) walks it, and its
// depth error comes before any other: insert and replace find it in the
// one pass that encodes the document (encodeDirect), every other path
// with pipeline.CheckJSONDepth first.
func (s *Sink) build(ev *pipeline.Event, arena *[]byte) (string, op, error) {
	if len(ev.Body) == 0 {
		return "", op{}, errNoBody
	}
	checked := false // ev.Body is known to be within the depth limit
	fail := func(err error) (string, op, error) {
		if !checked {
			if derr := s.checkDepth(ev); derr != nil {
				return "", op{}, derr
			}
		}
		return "", op{}, err
	}
	if s.cfg.Mode == ModeUpsert {
		if err := s.checkDepth(ev); err != nil {
			return "", op{}, err
		}
		checked = true
	}
	name, err := s.coll.RenderString(ev)
	if err != nil {
		return fail(fmt.Errorf("collection: %w", err))
	}
	if name == "" || strings.ContainsAny(name, "$\x00") || strings.HasPrefix(name, "system.") {
		return fail(fmt.Errorf("collection: %q is not a valid collection name", name))
	}
	id := ev.ID
	if s.id != nil {
		if id, err = s.id.RenderString(ev); err != nil {
			return fail(fmt.Errorf("id: %w", err))
		}
	}
	if id == "" {
		return fail(errors.New("event has an empty id"))
	}
	o := op{id: id, event: ev}
	var raw bson.Raw
	if s.cfg.Mode != ModeUpsert {
		if raw, err = s.appendDirect(ev, id, arena); err != nil {
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
		switch {
		case s.insertCmd:
			o.doc = raw
		case s.cfg.Mode == ModeInsert:
			o.model = mongo.NewInsertOneModel().SetDocument(raw)
		default:
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

func (s *Sink) checkDepth(ev *pipeline.Event) error {
	if err := pipeline.CheckJSONDepth(ev.Body, pipeline.DefaultMaxJSONDepth); err != nil {
		return fmt.Errorf("body of event %s: %w", ev.ID, err)
	}
	return nil
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

// appendDirect appends insert's and replace's document for a plain JSON
// body (an object without Extended JSON keys) to *arena, straight from the
// JSON: in one pass (encodeDirect, which also checks the depth) when it
// can, else through gjson. It returns nil for a body that is not plain,
// which goes through a bson.D.
func (s *Sink) appendDirect(ev *pipeline.Event, id string, arena *[]byte) (bson.Raw, error) {
	start := len(*arena)
	buf, res, at := encodeDirect(*arena, id, ev.Body, pipeline.DefaultMaxJSONDepth)
	switch res {
	case directDeep:
		return nil, fmt.Errorf("body of event %s: %w", ev.ID, &pipeline.JSONDepthError{Max: pipeline.DefaultMaxJSONDepth, Offset: at, Size: len(ev.Body)})
	case directDeclined:
		// A declined pass wrote past len(*arena) only: *arena is intact.
		// What it declined is checked as before the pass was one.
		if err := s.checkDepth(ev); err != nil {
			return nil, err
		}
		if bytes.Contains(ev.Body, []byte(`"$`)) {
			return nil, nil
		}
		obj, plain := viewPlainObject(ev.Body)
		if !plain {
			return nil, nil
		}
		var err error
		if buf, err = appendFullDoc(*arena, id, obj); err != nil {
			return nil, fmt.Errorf("event %s cannot be encoded as BSON: %w", ev.ID, err)
		}
	}
	raw := bson.Raw(buf[start:len(buf):len(buf)])
	if err := s.checkSize(ev, raw); err != nil {
		return nil, err
	}
	*arena = buf
	return raw, nil
}

func (s *Sink) checkSize(ev *pipeline.Event, raw []byte) error {
	if len(raw) > int(s.cfg.MaxDocumentBytes) {
		return fmt.Errorf("event %s is %d bytes as BSON, over max_document_bytes (%d)", ev.ID, len(raw), s.cfg.MaxDocumentBytes)
	}
	return nil
}
