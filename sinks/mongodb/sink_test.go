package mongodb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

var dbSeq atomic.Int64

// uniqueDB names a database no other test (or earlier run) uses.
func uniqueDB(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_", ":", "_").Replace(t.Name())
	if len(name) > 30 {
		name = name[:30]
	}
	return fmt.Sprintf("t_%s_%d_%d", name, time.Now().UnixNano()%1e9, dbSeq.Add(1))
}

func newSink(t testing.TB, uri, db string, mutate func(*mongosink.Config)) *mongosink.Sink {
	t.Helper()
	var c mongosink.Config
	c.SetDefaults()
	c.URI = uri
	c.Database = db
	c.Collection = *pipeline.MustParseTemplate("events")
	c.MaxBatch = 50 // FerretDB: keep one command well under ~99 statements
	if mutate != nil {
		mutate(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := mongosink.New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func client(t testing.TB, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// docs returns every document of db.coll as Extended JSON, by _id.
func docs(t testing.TB, c *mongo.Client, db, coll string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	cur, err := c.Database(db).Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var raws []bson.Raw
	if err := cur.All(ctx, &raws); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range raws {
		id, _ := r.Lookup("_id").StringValueOK()
		out[id] = r.String()
	}
	return out
}

// doc returns one document; Lookup("a", "b") reads nested fields.
func doc(t testing.TB, c *mongo.Client, db, coll, id string) bson.Raw {
	t.Helper()
	r, err := c.Database(db).Collection(coll).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		t.Fatalf("find %s: %v", id, err)
	}
	return r
}

// str renders a BSON value for comparison: strings bare, numbers as
// digits whatever their width, dates as RFC 3339.
func str(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		n, _ := v.AsInt64OK()
		return fmt.Sprint(n)
	case bson.TypeDateTime:
		return v.Time().UTC().Format(time.RFC3339)
	}
	return v.String()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// crmEvent is a decoded CRM event about contact n.
func crmEvent(i, contact int, typ, email string) *pipeline.Event {
	body := fmt.Sprintf(`{"id":"evt_%d","source":"salesforce","type":%q,"occurred_at":%q,"data":{"Id":"003%04d","Email":%q,"Score":%d}}`,
		i, typ, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), contact, email, i)
	return &pipeline.Event{
		ID: fmt.Sprintf("evt_%d", i), Key: fmt.Appendf(nil, "contact:%d", contact),
		Time: t0.Add(time.Duration(i) * time.Minute), Payload: []byte(body), Body: []byte(body),
	}
}

// timelineUpdate keeps per-contact documents: latest email, first and last
// seen, an event count and the last three events.
func timelineUpdate(c *mongosink.Config) {
	c.Mode = mongosink.ModeUpsert
	c.ID = "data.Id"
	c.Collection = *pipeline.MustParseTemplate("contacts")
	c.Update = mongosink.UpdateConfig{
		Set:          map[string]string{"email": "data.Email", "source": "source"},
		SetOnInsert:  map[string]string{"first_seen": "$time"},
		Inc:          map[string]int64{"events": 1},
		Max:          map[string]string{"last_seen": "$time"},
		Push:         map[string]mongosink.PushConfig{"timeline": {Keep: 3, Value: map[string]string{"id": "$id", "type": "type"}}},
		AppliedField: "_applied", AppliedKeep: 100,
	}
}

func TestSameBatchTwiceGivesTheSameDocuments(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	batch := func() []*pipeline.Event {
		var b []*pipeline.Event
		for i := range 30 {
			b = append(b, crmEvent(i, i%6, "contact.updated", fmt.Sprintf("c%d-%d@x.io", i%6, i)))
		}
		return b
	}
	tests := []struct {
		mode   string
		mutate func(*mongosink.Config)
		docs   int
	}{
		{mongosink.ModeInsert, nil, 30},
		{mongosink.ModeReplace, func(c *mongosink.Config) { c.ID = "{{source}}:{{data.Id}}" }, 6},
		{mongosink.ModeUpsert, timelineUpdate, 6},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			db := uniqueDB(t)
			s := newSink(t, uri, db, func(c *mongosink.Config) {
				c.Mode = tt.mode
				c.MaxBatch = 7 // several bulks per write, several in parallel
				if tt.mutate != nil {
					tt.mutate(c)
				}
			})
			coll := "events"
			if tt.mode == mongosink.ModeUpsert {
				coll = "contacts"
			}
			if err := s.Write(context.Background(), batch()); err != nil {
				t.Fatal(err)
			}
			first := docs(t, c, db, coll)
			if len(first) != tt.docs {
				t.Fatalf("%d documents after the first write, want %d", len(first), tt.docs)
			}
			if err := s.Write(context.Background(), batch()); err != nil {
				t.Fatalf("second write: %v", err)
			}
			second := docs(t, c, db, coll)
			if len(second) != len(first) {
				t.Fatalf("%d documents after the second write, want %d", len(second), len(first))
			}
			for id, d := range first {
				if second[id] != d {
					t.Errorf("%s changed on replay:\n before %s\n after  %s", id, d, second[id])
				}
			}
			if tt.mode == mongosink.ModeReplace {
				// Last write wins per _id, in event order.
				if got := str(doc(t, c, db, coll, "salesforce:0030005").Lookup("data", "Email")); got != "c5-29@x.io" {
					t.Errorf("contact 5 email %v, want the latest c5-29@x.io", got)
				}
			}
		})
	}
}

func TestUpsertMergesOneEntityAndIgnoresRedelivery(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	db := uniqueDB(t)
	s := newSink(t, uri, db, timelineUpdate)
	ctx := context.Background()
	events := []*pipeline.Event{
		crmEvent(1, 7, "contact.created", "ada@old.io"),
		crmEvent(2, 7, "contact.updated", "ada@new.io"),
		crmEvent(3, 8, "contact.created", "grace@x.io"), // another contact in the same bulk
		crmEvent(4, 7, "lead.converted", "ada@new.io"),
	}
	if err := s.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []*pipeline.Event{crmEvent(5, 7, "task.completed", "ada@final.io")}); err != nil {
		t.Fatal(err)
	}
	before := docs(t, c, db, "contacts")
	d := doc(t, c, db, "contacts", "0030007")
	checks := map[string]string{
		"email":      "ada@final.io",
		"source":     "salesforce",
		"events":     "4",
		"first_seen": t0.Add(1 * time.Minute).Format(time.RFC3339),
		"last_seen":  t0.Add(5 * time.Minute).Format(time.RFC3339),
	}
	for k, want := range checks {
		if got := str(d.Lookup(k)); got != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	// The newest entries, oldest first. MongoDB keeps exactly the last 3;
	// FerretDB 1.x ignores $slice, so it keeps all four (the bound itself is
	// checked on the update document in TestUpdateDocument).
	tl, _ := d.Lookup("timeline").Array().Values()
	if len(tl) != 3 && len(tl) != 4 {
		t.Fatalf("timeline has %d entries: %v", len(tl), tl)
	}
	var types []string
	for _, e := range tl[len(tl)-3:] {
		types = append(types, str(e.Document().Lookup("type")))
	}
	if got := strings.Join(types, ","); got != "contact.updated,lead.converted,task.completed" {
		t.Errorf("timeline tail %s", got)
	}
	if g := doc(t, c, db, "contacts", "0030008"); str(g.Lookup("email")) != "grace@x.io" || str(g.Lookup("events")) != "1" {
		t.Errorf("other contact: %v", g)
	}

	// Redelivered events, alone, mixed with a new one, and within one
	// batch twice: nothing already applied changes; the new one applies.
	for i, redelivery := range [][]*pipeline.Event{
		{crmEvent(2, 7, "contact.updated", "ada@new.io")},
		{crmEvent(4, 7, "lead.converted", "ada@new.io"), crmEvent(1, 7, "contact.created", "ada@old.io"), crmEvent(3, 8, "contact.created", "grace@x.io")},
	} {
		if err := s.Write(ctx, redelivery); err != nil {
			t.Fatalf("redelivery %d: %v", i, err)
		}
		after := docs(t, c, db, "contacts")
		for id, d := range before {
			if after[id] != d {
				t.Fatalf("redelivery %d changed %s:\n before %s\n after  %s", i, id, d, after[id])
			}
		}
	}
	if err := s.Write(ctx, []*pipeline.Event{crmEvent(3, 8, "contact.created", "grace@x.io"), crmEvent(6, 8, "contact.updated", "grace@new.io"), crmEvent(6, 8, "contact.updated", "grace@new.io")}); err != nil {
		t.Fatal(err)
	}
	g := doc(t, c, db, "contacts", "0030008")
	if e, n := str(g.Lookup("email")), str(g.Lookup("events")); e != "grace@new.io" || n != "2" {
		t.Errorf("after a new event among replays: email %s events %s, want grace@new.io and 2", e, n)
	}
	if after := docs(t, c, db, "contacts"); after["0030007"] != before["0030007"] {
		t.Errorf("contact 7 changed by another contact's events")
	}
}

func TestPerEventFailures(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	db := uniqueDB(t)
	s := newSink(t, uri, db, func(c *mongosink.Config) {
		c.Collection = *pipeline.MustParseTemplate("{{source}}_events")
		c.MaxDocumentBytes = 2048
	})
	good := func(i int) *pipeline.Event { return crmEvent(i, i, "contact.updated", "x@y.io") }
	noBody := good(1)
	noBody.Body = nil
	badKey := good(3) // the server refuses a field name starting with $
	badKey.Body = []byte(`{"source":"salesforce","$where":"1"}`)
	big := good(5)
	big.Body = []byte(`{"source":"salesforce","notes":"` + strings.Repeat("x", 4000) + `"}`)
	noSource := good(6)
	noSource.Body = []byte(`{"id":"evt_6"}`)
	batch := []*pipeline.Event{good(0), noBody, good(2), badKey, good(4), big, noSource, good(7)}
	err := s.Write(context.Background(), batch)
	var be *pipeline.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a BatchError", err)
	}
	want := map[int]string{1: "no decoded body", 3: "$where", 5: "max_document_bytes", 6: `no field "source"`}
	for _, f := range be.Failures {
		w, ok := want[f.Index]
		if !ok || !strings.Contains(f.Err.Error(), w) || !pipeline.IsPermanent(f.Err) {
			t.Errorf("failure [%d] permanent=%v: %v", f.Index, pipeline.IsPermanent(f.Err), f.Err)
		}
		delete(want, f.Index)
	}
	if len(want) > 0 {
		t.Errorf("events not failed: %v", want)
	}
	got := docs(t, c, db, "salesforce_events")
	for _, i := range []int{0, 2, 4, 7} {
		if _, ok := got[fmt.Sprintf("evt_%d", i)]; !ok {
			t.Errorf("evt_%d not stored", i)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d documents stored, want 4", len(got))
	}
}

func TestStartFailsClearly(t *testing.T) {
	uri := testenv.MongoURI(t)
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	tests := []struct {
		name, uri, want string
	}{
		{"nothing listening", "mongodb://127.0.0.1:1/?connectTimeoutMS=500", "cannot connect to mongodb://127.0.0.1:1"},
		{"bad credentials", "mongodb://nobody:wrong-password@" + host + "/", "AuthenticationFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c mongosink.Config
			c.SetDefaults()
			c.URI, c.Database, c.Collection = tt.uri, uniqueDB(t), *pipeline.MustParseTemplate("events")
			c.ConnectTimeout = pipeline.Duration(time.Second)
			s, err := mongosink.New(pipelinetest.BuildContext(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			err = s.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("error shows the password: %v", err)
			}
			if s.Ready() == nil {
				t.Error("Ready() is nil after a failed start")
			}
		})
	}
	t.Run("the run fails at start", func(t *testing.T) {
		reg := pipeline.NewRegistry()
		mongosink.Register(reg)
		src := pipelinetest.NewSource([]*pipeline.Event{crmEvent(1, 1, "x", "y")})
		pipelinetest.Register(reg, src)
		err := pipelinetest.RunToEnd(t, "m.yaml", `name: m
source: {mem: {}}
sinks:
  - mongodb: {uri: "mongodb://nobody:wrong@`+host+`/", database: d, collection: c, connect_timeout: 1s}
`, reg)
		if err == nil || !strings.Contains(err.Error(), "start sinks[0].mongodb") || !strings.Contains(err.Error(), "AuthenticationFailed") {
			t.Fatalf("Run: %v", err)
		}
		if src.EventsRead() != 0 {
			t.Errorf("read %d events before the sink started", src.EventsRead())
		}
	})
}

func TestConfigErrors(t *testing.T) {
	reg := pipeline.NewRegistry()
	mongosink.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource())
	tests := []struct {
		name, sink string
		want       []string
	}{
		{"valid upsert", `{uri: "mongodb://h/", database: crm, collection: "{{source}}_contacts", mode: upsert, id: data.Id,
      update: {set: {email: data.Email}, inc: {events: 1}, max: {last_seen: $time}, push: {timeline: {keep: 50, value: {id: $id, type: type}}}}}`, nil},
		{"missing keys", `{mode: insert}`, []string{"sinks[0].mongodb.uri", "sinks[0].mongodb.database", "sinks[0].mongodb.collection"}},
		{"bad values", `{uri: "http://h", database: "a.b", collection: c, mode: merge, write_concern: most, max_batch: 0, parallelism: 0}`,
			[]string{"mongodb.uri", "mongodb.database", "mongodb.mode", "mongodb.write_concern", "mongodb.max_batch", "mongodb.parallelism"}},
		{"update without upsert", `{uri: "mongodb://h/", database: d, collection: c, update: {inc: {n: 1}}}`, []string{"mongodb.update: only applies to mode: upsert"}},
		{"conflicting and unbounded update", `{uri: "mongodb://h/", database: d, collection: c, mode: upsert,
      update: {set: {a: x, _id: y}, inc: {a.b: 1}, max: {m: $nope}, push: {t: {value: {id: $id}}}}}`,
			[]string{"update.set._id", "update.set.a: conflicts", "update.max.m", "update.push.t.keep"}},
		{"index on a templated collection", `{uri: "mongodb://h/", database: d, collection: "{{source}}", indexes: [{keys: [email]}]}`, []string{"indexes[0].collection"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pipeline.Load("m.yaml", []byte("name: m\nsource: {mem: {}}\nsinks:\n  - mongodb: "+tt.sink+"\n"), reg, func(string) (string, bool) { return "", false })
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestIndexesEnsuredAtStart(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	db := uniqueDB(t)
	newSink(t, uri, db, func(c *mongosink.Config) {
		c.Indexes = []mongosink.IndexConfig{{Keys: []string{"data.Email", "-occurred_at"}, Name: "email_recent"}, {Collection: "other", Keys: []string{"id"}, Unique: true}}
	})
	// Starting again finds them in place.
	newSink(t, uri, db, func(c *mongosink.Config) {
		c.Indexes = []mongosink.IndexConfig{{Keys: []string{"data.Email", "-occurred_at"}, Name: "email_recent"}}
	})
	for coll, want := range map[string]string{"events": "email_recent", "other": "id_1"} {
		specs, err := c.Database(db).Collection(coll).Indexes().ListSpecifications(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range specs {
			found = found || s.Name == want
		}
		if !found {
			t.Errorf("%s: no index %s in %v", coll, want, specs)
		}
	}
}
