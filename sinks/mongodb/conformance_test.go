package mongodb_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
)

// TestConformance runs the sink table against the shared MongoDB-compatible
// server in replace mode (a rewrite of an id replaces its document), a
// fresh database per case. The poison event is over max_document_bytes.
func TestConformance(t *testing.T) {
	uri := testenv.MongoURI(t)
	c := client(t, uri)
	conformance.TestSink(t, func(t *testing.T) *conformance.SinkUnderTest {
		db := uniqueDB(t)
		t.Cleanup(func() { _ = c.Database(db).Drop(context.Background()) })
		s := newSink(t, uri, db, func(c *mongosink.Config) {
			c.Mode = mongosink.ModeReplace
			c.MaxDocumentBytes = 4 << 10
		})
		return &conformance.SinkUnderTest{
			Sink: s,
			Kind: conformance.Store,
			ReadBack: func(ctx context.Context) ([]conformance.Record, error) {
				cur, err := c.Database(db).Collection("events").Find(ctx, bson.D{})
				if err != nil {
					return nil, err
				}
				var raws []bson.Raw
				if err := cur.All(ctx, &raws); err != nil {
					return nil, err
				}
				recs := make([]conformance.Record, 0, len(raws))
				for _, r := range raws {
					js, err := bson.MarshalExtJSON(r, false, false)
					if err != nil {
						return nil, err
					}
					recs = append(recs, conformance.Record{ID: str(r.Lookup("_id")), Body: js})
				}
				return recs, nil
			},
			Poison: func(id, key string) *pipeline.Event {
				ev := conformance.Event(id, key, 0)
				ev.Body = fmt.Appendf(nil, `{"id":%q,"pad":%q}`, id, strings.Repeat("x", 8<<10))
				return ev
			},
			Unreachable: func(t *testing.T) pipeline.Sink {
				var cfg mongosink.Config
				cfg.SetDefaults()
				cfg.URI = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000"
				cfg.Database, cfg.Collection = db, *pipeline.MustParseTemplate("events")
				cfg.Mode = mongosink.ModeReplace
				cfg.WriteTimeout = pipeline.Duration(2 * time.Second)
				if err := cfg.Validate(); err != nil {
					t.Fatal(err)
				}
				u, err := mongosink.New(pipelinetest.BuildContext(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				return u
			},
		}
	})
}
