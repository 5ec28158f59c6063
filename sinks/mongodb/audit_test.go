package mongodb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

// TestAuditCounts: the bench audit's read-back counts each document once by
// _id after a rewrite, Reset drops the collection, and a templated
// collection is refused with a reason.
func TestAuditCounts(t *testing.T) {
	uri := testenv.MongoURI(t)
	db := uniqueDB(t)
	c := client(t, uri)
	t.Cleanup(func() { _ = c.Database(db).Drop(context.Background()) })
	s := newSink(t, uri, db, nil)
	batch := []*pipeline.Event{conformance.Event("a", "k", 1), conformance.Event("b", "k", 1)}
	for range 2 {
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	var cfg mongosink.Config
	cfg.SetDefaults()
	cfg.URI, cfg.Database, cfg.Collection = uri, db, *pipeline.MustParseTemplate("events")
	st, err := cfg.Audit(context.Background(), "sinks[0].mongodb")
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Counts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 1 || got["b"] != 1 || !st.Idempotent() || st.Name() != "sinks[0].mongodb" {
		t.Fatalf("Counts = %v, Idempotent %v, Name %q", got, st.Idempotent(), st.Name())
	}
	if err := st.Reset(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Counts(context.Background(), nil); err != nil || len(got) != 0 {
		t.Fatalf("after Reset: %v, %v", got, err)
	}
	cfg.Collection = *pipeline.MustParseTemplate("{{source}}_events")
	if _, err := cfg.Audit(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "fixed collection") {
		t.Fatalf("templated collection: err = %v, want the fixed-collection refusal", err)
	}
}
