package mongodb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	filesinks "github.com/sluicehq/sluice/sinks/file"
	mongosink "github.com/sluicehq/sluice/sinks/mongodb"
	"github.com/sluicehq/sluice/sources/generate"
	"github.com/sluicehq/sluice/transforms/decode"
)

// The example runs as written (with a small count and, for FerretDB,
// bulks under 99 operations) and yields one merged document per contact.
func TestExampleCRMToMongoDB(t *testing.T) {
	uri := testenv.MongoURI(t)
	db := uniqueDB(t)
	out := t.TempDir()
	env := map[string]string{
		// FerretDB 1.24 (SQLite) stopped answering when bulks to two
		// collections of one database ran concurrently: one lane, one
		// bulk at a time. Real MongoDB runs the example's defaults.
		"MONGO_URI": uri, "MONGO_DATABASE": db, "MONGO_MAX_BATCH": "50", "MONGO_PARALLELISM": "1", "SLUICE_LANES": "1",
		"SLUICE_DEMO_COUNT": "300", "SLUICE_DEMO_RATE": "100000/s", "SLUICE_DEMO_ENTITIES": "40",
		"SLUICE_OUT_DIR": out, "SLUICE_METRICS_ADDR": "",
	}
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	decode.Register(reg)
	filesinks.Register(reg)
	mongosink.Register(reg)
	cfg, err := pipeline.LoadFile("../../examples/crm-to-mongodb.yaml", reg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	mreg := prometheus.NewRegistry()
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)), pipeline.WithMetricsRegisterer(mreg))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	c := client(t, uri)
	contacts, events := 0, int64(0)
	for _, coll := range []string{"salesforce_contacts", "hubspot_contacts"} {
		for id := range docs(t, c, db, coll) {
			contacts++
			d := doc(t, c, db, coll, id)
			n, _ := d.Lookup("events").AsInt64OK()
			events += n
			applied, _ := d.Lookup("_applied").Array().Values()
			seen := map[string]bool{}
			for _, a := range applied {
				seen[a.StringValue()] = true
			}
			// Each applied event counted once: duplicates were no-ops.
			if int64(len(seen)) != n || len(applied) != len(seen) {
				t.Errorf("%s/%s: events %d, applied %d (%d distinct)", coll, id, n, len(applied), len(seen))
			}
			if d.Lookup("profile").Type != 0x03 || str(d.Lookup("source")) == "" || d.Lookup("last_seen").Type != 0x09 {
				t.Errorf("%s/%s lacks merged fields: %s", coll, id, d)
			}
		}
	}
	if contacts == 0 || contacts > 40 {
		t.Errorf("%d contact documents, want 1..40", contacts)
	}
	dead := 0
	if f, err := os.Open(filepath.Join(out, "crm-to-mongodb.dead.jsonl")); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var dl pipeline.DeadLetter
			if err := json.Unmarshal(sc.Bytes(), &dl); err != nil || dl.Component != "transforms[0].decode" {
				t.Errorf("unexpected dead letter (only poison should fail to decode): %s", sc.Text())
			}
			dead++
		}
		f.Close()
	}
	// Every generated event is applied exactly once, dead-lettered, or a
	// duplicate of one already applied.
	dups := pipelinetest.MetricSum(t, mreg, "sluice_mongodb_documents_total", map[string]string{"result": "duplicate"})
	if events+int64(dead)+int64(dups) != 300 || events < 250 {
		t.Errorf("%d events applied + %d dead + %v duplicates, want 300 generated", events, dead, dups)
	}
	t.Logf("%d contacts, %d events applied, %v duplicates, %d dead letters", contacts, events, dups, dead)
}
