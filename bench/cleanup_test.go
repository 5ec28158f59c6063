package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sinks/elasticsearch"
	"github.com/sluicehq/sluice/sinks/mongodb"
	"github.com/sluicehq/sluice/transforms/enrich"
)

// storesConsumer is the default consumer's shape (enrich makes the event
// types' fields one mapping): the bench topic into a
// MongoDB collection and an OpenSearch index set. %s are the collection
// and the index (templates of ${BENCH_GROUP}, or fixed names).
const storesConsumer = `name: bench-clean-consumer
source:
  kafka: {brokers: ["${SLUICE_KAFKA_BROKERS}"], topic: "${BENCH_TOPIC}", group: "${BENCH_GROUP}", session_timeout: 10s}
transforms:
  - decode: {format: json, id: id, time: occurred_at}
  - enrich: {strip_tags: true}
sinks:
  - mongodb: {uri: %q, database: bench, collection: %q, mode: insert}
  - elasticsearch: {urls: [%q], username: %q, password: %q, flavor: %q, index: %q}
batch: {max_events: 200, max_wait: 50ms}
`

// storesRegistry is registry(nil) with the MongoDB and Elasticsearch sinks.
func storesRegistry() *pipeline.Registry {
	r := registry(nil)()
	enrich.Register(r)
	mongodb.Register(r)
	elasticsearch.Register(r)
	return r
}

// runLeftovers is what a bench run made, looked up on the servers
// themselves after it returned.
type runLeftovers struct {
	topic, group, collection, indices bool
}

// TestRunDeletesWhatItMade runs the bench against the shared stack's
// Kafka, MongoDB and OpenSearch and looks on the servers for what the run
// made: by default nothing is left, with Keep everything is, and a
// collection or index whose name is not the run's own is never dropped.
func TestRunDeletesWhatItMade(t *testing.T) {
	brokers := testenv.RealKafkaBrokers(t)
	mongoURI := testenv.MongoURI(t)
	esURL := testenv.OpenSearchURL(t)
	_, esUser, esPass := testenv.ElasticsearchURL(t)
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	fixed := "cleanfix_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, tc := range []struct {
		name              string
		keep              bool
		collection, index string
		// what must be left after the run
		want runLeftovers
	}{
		{name: "default deletes all", collection: "events_${BENCH_GROUP}", index: "${BENCH_GROUP}-{2006.01.02}"},
		{name: "keep keeps all", keep: true, collection: "events_${BENCH_GROUP}", index: "${BENCH_GROUP}-{2006.01.02}",
			want: runLeftovers{topic: true, group: true, collection: true, indices: true}},
		{name: "fixed store names are never dropped", collection: fixed, index: strings.ReplaceAll(fixed, "_", "-"),
			want: runLeftovers{collection: true, indices: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			profile, err := NewProfile("max", 0, 300)
			if err != nil {
				t.Fatal(err)
			}
			cfg := fmt.Sprintf(storesConsumer, mongoURI, tc.collection, esURL, esUser, esPass, testenv.ElasticsearchFlavor(), tc.index)
			ctx := context.Background()
			res, err := Run(ctx, Options{
				Profile: profile, Registry: storesRegistry, Brokers: strings.Join(brokers, ","), OutDir: t.TempDir(),
				ConsumerConfig: []byte(cfg), ConsumerFile: "clean-consumer.yaml", Seed: 3, Keep: tc.keep,
			})
			if res == nil || res.Stamp == "" {
				t.Fatalf("no result with a stamp: %v", err)
			}
			names := leftoverNames(res.Stamp, tc.collection, tc.index)
			t.Cleanup(func() { removeLeftovers(t, brokers, mc.Database("bench"), esURL, names) })
			if err != nil {
				t.Fatal(err)
			}
			if !res.Audit.OK() || res.Audit.Sent != 300 {
				t.Fatalf("the run itself failed: %s", res.Audit.Line())
			}
			got := lookLeftovers(t, brokers, mc.Database("bench"), esURL, names)
			topicPending := got.topic && !tc.want.topic
			if topicPending {
				// Kafka deletes a topic in the background: the rest
				// is judged now, the topic last, once the broker
				// stops listing it.
				got.topic = false
			}
			if got != tc.want {
				t.Fatalf("left on the servers: %+v, want %+v (%s)", got, tc.want, res.Cleanup.Line())
			}
			line := res.Cleanup.Line()
			for _, n := range []string{"topic " + names.topic, "consumer group " + names.group, "collection bench." + names.collection, "indices " + names.index} {
				if !strings.Contains(line, n) {
					t.Fatalf("the cleanup line does not name %q: %s", n, line)
				}
			}
			if len(res.Cleanup.Failed) > 0 {
				t.Fatalf("cleanup failures: %s", line)
			}
			if tc.keep && (len(res.Cleanup.Deleted) > 0 || !strings.Contains(line, "(--keep)")) {
				t.Fatalf("Keep deleted something or did not say so: %s", line)
			}
			if !tc.keep && tc.want.collection && !strings.Contains(line, "collection bench."+names.collection+" (not this run's") {
				t.Fatalf("the fixed collection is not reported as kept: %s", line)
			}
			if topicPending {
				testwait.For(t, "the topic deleted", func() bool { return !topicListed(t, brokers, names.topic) }, func() string { return line })
			}
		})
	}
}

// leftovers names what a run with stamp made.
type leftovers struct{ topic, group, collection, index string }

func leftoverNames(stamp, collection, index string) leftovers {
	group := "bench-" + stamp
	expand := func(s string) string { return strings.ReplaceAll(s, "${BENCH_GROUP}", group) }
	return leftovers{topic: "bench.max." + stamp, group: group, collection: expand(collection), index: indexPattern(expand(index))}
}

// indexPattern is the audit's: every {layout} placeholder a wildcard.
func indexPattern(tmpl string) string {
	if i := strings.Index(tmpl, "{"); i >= 0 {
		return tmpl[:i] + "*"
	}
	return tmpl
}

func lookLeftovers(t *testing.T, brokers []string, db *mongo.Database, esURL string, n leftovers) runLeftovers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	got := runLeftovers{topic: topicListed(t, brokers, n.topic)}
	groups, err := client.ListGroups(ctx, &kafkago.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		got.group = got.group || g.GroupID == n.group
	}
	colls, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: n.collection}})
	if err != nil {
		t.Fatal(err)
	}
	got.collection = len(colls) > 0
	got.indices = len(esIndices(t, ctx, esURL, n.index)) > 0
	return got
}

// topicListed reports whether the broker's metadata lists topic.
func topicListed(t *testing.T, brokers []string, topic string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 30 * time.Second}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if tp.Name == topic && !errors.Is(tp.Error, kafkago.UnknownTopicOrPartition) {
			return true
		}
	}
	return false
}

func esIndices(t *testing.T, ctx context.Context, esURL, pattern string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, esURL+"/_cat/indices/"+pattern+"?format=json&h=index", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list %s: %s %s", pattern, resp.Status, data)
	}
	var out []string
	for _, r := range gjson.ParseBytes(data).Array() {
		out = append(out, r.Get("index").String())
	}
	return out
}

// removeLeftovers deletes whatever the test's run left (Keep, fixed names,
// or a failure): the test stack's disk is shared.
func removeLeftovers(t *testing.T, brokers []string, db *mongo.Database, esURL string, n leftovers) {
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := deleteGroup(ctx, brokers, n.group); err != nil {
		t.Logf("remove group %s: %v", n.group, err)
	}
	if err := deleteTopic(ctx, brokers, n.topic); err != nil {
		t.Logf("remove topic %s: %v", n.topic, err)
	}
	if err := db.Collection(n.collection).Drop(ctx); err != nil {
		t.Logf("remove collection %s: %v", n.collection, err)
	}
	for _, idx := range esIndices(t, ctx, esURL, n.index) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, esURL+"/"+idx, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// checkDeleted fails unless the run's cleanup deleted every one of names
// and failed on nothing.
func checkDeleted(t *testing.T, res *Result, names ...string) {
	t.Helper()
	if res.Stamp == "" || res.Cleanup == nil || len(res.Cleanup.Failed) > 0 {
		t.Fatalf("stamp %q, %s", res.Stamp, res.Cleanup.Line())
	}
	deleted := map[string]bool{}
	for _, d := range res.Cleanup.Deleted {
		deleted[d] = true
	}
	for _, n := range names {
		if !deleted[n] {
			t.Fatalf("the run did not delete %s: %s", n, res.Cleanup.Line())
		}
	}
}
