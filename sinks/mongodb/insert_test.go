package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// TestInsertCommandsSplitBySize writes insert mode's documents with
// several insert commands (the documents limit lowered to ~3 documents)
// and checks that a document the server refuses in a later command, and
// one already stored, map back to their own events: indexes are offset
// by the command's first document.
func TestInsertCommandsSplitBySize(t *testing.T) {
	uri := testenv.MongoURI(t)
	db := fmt.Sprintf("t_insertsplit_%d", time.Now().UnixNano()%1e9)
	var c Config
	c.SetDefaults()
	c.URI, c.Database, c.Collection = uri, db, *pipeline.MustParseTemplate("events")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		_ = s.client.Database(db).Drop(ctx)
		_ = s.Close(ctx)
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.insertCmd {
		t.Fatal("insert mode does not use the insert command")
	}
	pad := strings.Repeat("x", 1000)
	event := func(i int) *pipeline.Event {
		body := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad)
		return &pipeline.Event{ID: fmt.Sprintf("e%02d", i), Body: []byte(body), Payload: []byte(body)}
	}
	// e04 first, alone: in the batch below it is already stored.
	if err := s.Write(ctx, []*pipeline.Event{event(4)}); err != nil {
		t.Fatal(err)
	}
	s.maxCmdDocs = 3500 // three ~1 KiB documents per command
	batch := make([]*pipeline.Event, 10)
	for i := range batch {
		batch[i] = event(i)
	}
	// The server refuses a top-level field starting with $: the 8th
	// document, in the third command.
	batch[7].Body = []byte(`{"n":7,"$bad":1}`)
	err = s.Write(ctx, batch)
	var be *pipeline.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a BatchError", err)
	}
	if len(be.Failures) != 1 || be.Failures[0].Index != 7 || !pipeline.IsPermanent(be.Failures[0].Err) {
		t.Fatalf("failures %+v, want only [7], permanent", be.Failures)
	}
	cur, err := s.client.Database(db).Collection("events").Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		ID string `bson:"_id"`
		N  int    `bson:"n"`
	}
	if err := cur.All(ctx, &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		if d.ID != fmt.Sprintf("e%02d", d.N) {
			t.Errorf("document %s holds n=%d", d.ID, d.N)
		}
		ids = append(ids, d.ID)
	}
	if want := "e00 e01 e02 e03 e04 e05 e06 e08 e09"; strings.Join(ids, " ") != want {
		t.Errorf("stored %v, want %s", ids, want)
	}
}

// TestInsertCommandUnreachable: a command that fails as a whole (no
// server) fails every event of the chunk, retryable.
func TestInsertCommandUnreachable(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.URI = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=500"
	c.Database, c.Collection = "x", *pipeline.MustParseTemplate("events")
	c.WriteTimeout = pipeline.Duration(2 * time.Second)
	s, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	body := []byte(`{"a":1}`)
	err = s.Write(context.Background(), []*pipeline.Event{{ID: "a", Body: body}, {ID: "b", Body: body}})
	var be *pipeline.BatchError
	if errors.As(err, &be) {
		t.Fatalf("err = %v, want one error for the whole batch", err)
	}
	var bwe mongo.BulkWriteException
	if err == nil || pipeline.IsPermanent(err) || errors.As(err, &bwe) {
		t.Fatalf("err = %v, want a retryable command error", err)
	}
}
