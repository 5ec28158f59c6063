package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasink "github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sources/hubspot"
)

// fakeHubSpot serves n contacts, three per millisecond, through the CRM v3
// search API (sorted ascending, `after` offsets, paging.next.after).
func fakeHubSpot(t *testing.T, n int) *httptest.Server {
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			FilterGroups []struct {
				Filters []struct{ Value string } `json:"filters"`
			} `json:"filterGroups"`
			Limit int    `json:"limit"`
			After string `json:"after"`
		}
		if r.Header.Get("Authorization") != "Bearer pat-na1-e2e" || json.NewDecoder(r.Body).Decode(&req) != nil {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"status":"error","message":"Authentication credentials not found.","category":"INVALID_AUTHENTICATION"}`))
			return
		}
		anchor, _ := strconv.ParseInt(req.FilterGroups[0].Filters[0].Value, 10, 64)
		after, _ := strconv.Atoi(req.After)
		var results []map[string]any
		for i := range n {
			ts := start.Add(time.Duration(i/3) * time.Millisecond)
			if ts.UnixMilli() < anchor {
				continue
			}
			s := ts.Format("2006-01-02T15:04:05.000Z")
			results = append(results, map[string]any{"id": strconv.Itoa(50000 + i), "properties": map[string]string{
				"email": fmt.Sprintf("grace%d@globex.io", i), "lastmodifieddate": s, "associatedcompanyid": strconv.Itoa(9000 + i%20),
			}, "createdAt": "2024-03-01T09:30:00.000Z", "updatedAt": s, "archived": false})
		}
		total := len(results)
		results = results[min(after, total):min(after+req.Limit, total)]
		resp := map[string]any{"total": total, "results": results}
		if after+req.Limit < total {
			resp["paging"] = map[string]any{"next": map[string]string{"after": strconv.Itoa(after + req.Limit)}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A CRM poller writing to Kafka, checkpointing in MongoDB: every record
// lands once in the topic, keyed by contact, and the cursor saved is the
// last record's.
func TestHubSpotToKafkaWithMongoCursor(t *testing.T) {
	const n = 1000
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(6, "crm.events"))
	mongoURI := testenv.MongoURI(t)
	db := fmt.Sprintf("e2e_pollers_%d", time.Now().UnixNano())
	srv := fakeHubSpot(t, n)

	reg := pipeline.NewRegistry()
	hubspot.Register(reg)
	kafkasink.Register(reg)
	doc := fmt.Sprintf(`name: crm-hubspot-to-kafka
source:
  hubspot:
    token: pat-na1-e2e
    base_url: %s
    objects: [{name: contacts, properties: [email]}]
    page_size: 200
    interval: 100ms
    checkpoint_interval: 50ms
    checkpoint: {key: e2e, mongodb: {uri: %q, database: %s}}
sinks: [{kafka: {brokers: [%q], topic: crm.events}}]
batch: {max_events: 200, max_wait: 20ms}
`, srv.URL, mongoURI, db, strings.Join(brokers, ","))
	run := pipelinetest.Start(t, "e2e.yaml", doc, reg)
	p := run.Pipeline

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("crm.events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := map[string]int{}
	keys := map[string]string{}
	// The poll's own timeout only paces the loop; the bound is a hang's.
	testwait.For(t, fmt.Sprintf("%d events in the topic", n), func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			var env struct{ ID, Key, Source string }
			if err := json.Unmarshal(r.Value, &env); err != nil || env.Source != "hubspot" {
				t.Errorf("record %s: %v", r.Value, err)
				return
			}
			ids[env.ID]++
			keys[env.ID] = string(r.Key)
			if string(r.Key) != env.Key || !strings.HasPrefix(env.Key, "hubspot:5") {
				t.Errorf("kafka key %q, envelope key %q", r.Key, env.Key)
			}
		})
		return len(ids) >= n
	}, func() string { return fmt.Sprintf("%d of %d events; stats %+v", len(ids), n, p.Stats()) })
	if len(ids) != n {
		t.Fatalf("%d distinct events in the topic, want %d", len(ids), n)
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("%s in the topic %d times", id, c)
		}
	}
	// The cursor reaches the last record once its batch is acked.
	ms, err := poller.OpenMongoStore(mongoURI, db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close(context.Background())
	last := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration((n-1)/3) * time.Millisecond)
	var cur poller.Cursor
	testwait.ForEvery(t, 50*time.Millisecond, "the cursor at the last record", func() bool {
		cur, _, err = ms.Load(context.Background(), "e2e", "contacts")
		return err == nil && cur.Time.Equal(last)
	}, func() string { return fmt.Sprintf("cursor %+v, err %v; want %s", cur, err, last) })
	if !cur.Time.Equal(last) || !slices.Contains([]string{"50997", "50998", "50999"}, cur.ID) {
		t.Fatalf("cursor %+v, want the last millisecond %s", cur, last)
	}
	if err := run.Stop(t); err != nil {
		t.Fatal(err)
	}
}
