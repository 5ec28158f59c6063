package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/testenv"
)

// unique returns a name that differs between runs against the same servers.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestKafka(t *testing.T) {
	tests := []struct {
		name    string
		brokers func(t *testing.T) []string
		nb      int // 0: as many as the stack lists
	}{
		{"shared server", func(t *testing.T) []string { return testenv.KafkaBrokers(t) }, 0},
		{"in-process", func(t *testing.T) []string {
			return testenv.StartKafka(t, kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
		}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			brokers := tc.brokers(t)
			if tc.nb > 0 && len(brokers) != tc.nb {
				t.Fatalf("got %d brokers %v, want %d", len(brokers), brokers, tc.nb)
			}
			kafkaRoundTrip(t, brokers)
		})
	}
}

func kafkaRoundTrip(t *testing.T, brokers []string) {
	ctx := ctxFor(t, 30*time.Second)
	topic := unique("smoke")

	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial %s: %v", brokers[0], err)
	}
	defer conn.Close()
	got, err := conn.Brokers()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(got) != len(brokers) {
		t.Fatalf("metadata lists %d brokers, want %d", len(got), len(brokers))
	}
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	cconn, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		t.Fatalf("dial controller: %v", err)
	}
	defer cconn.Close()
	if err := cconn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	want := kafka.Message{Key: []byte("k1"), Value: []byte("hello sluice")}
	if err := w.WriteMessages(ctx, want); err != nil {
		t.Fatalf("write: %v", err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(m.Key) != "k1" || string(m.Value) != "hello sluice" || m.Offset != 0 {
		t.Fatalf("read key=%q value=%q offset=%d, want k1/hello sluice/0", m.Key, m.Value, m.Offset)
	}
}

func TestKinesis(t *testing.T) {
	endpoint := testenv.KinesisEndpoint(t)
	ctx := ctxFor(t, 60*time.Second)
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "testenv"}, nil
		}),
	})
	stream := unique("smoke")

	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	})
	waiter := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 500 * time.Millisecond
	})
	desc, err := waiter.WaitForOutput(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 30*time.Second)
	if err != nil {
		t.Fatalf("waiting for stream to become active: %v", err)
	}
	if got := desc.StreamDescription.StreamStatus; got != kinesistypes.StreamStatusActive {
		t.Fatalf("stream status %s, want ACTIVE", got)
	}
	if n := len(desc.StreamDescription.Shards); n != 1 {
		t.Fatalf("stream has %d shards, want 1", n)
	}

	put, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName:   aws.String(stream),
		PartitionKey: aws.String("pk"),
		Data:         []byte("hello sluice"),
	})
	if err != nil {
		t.Fatalf("PutRecord: %v", err)
	}

	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName:        aws.String(stream),
		ShardId:           put.ShardId,
		ShardIteratorType: kinesistypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator: %v", err)
	}
	recs, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	if len(recs.Records) != 1 {
		t.Fatalf("GetRecords returned %d records, want 1", len(recs.Records))
	}
	rec := recs.Records[0]
	if string(rec.Data) != "hello sluice" || aws.ToString(rec.PartitionKey) != "pk" ||
		aws.ToString(rec.SequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Fatalf("got record data=%q key=%q seq=%s, want %q/pk/%s", rec.Data, aws.ToString(rec.PartitionKey),
			aws.ToString(rec.SequenceNumber), "hello sluice", aws.ToString(put.SequenceNumber))
	}
}

func TestMongo(t *testing.T) {
	uri := testenv.MongoURI(t)
	ctx := ctxFor(t, 30*time.Second)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer disconnect(client)
	if err := client.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}

	coll := client.Database("sluice_testenv").Collection(strings.ReplaceAll(unique("smoke"), "-", "_"))
	defer dropCollection(coll)

	docs := []any{
		bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: int32(1)}, {Key: "msg", Value: "hello"}},
		bson.D{{Key: "_id", Value: "b"}, {Key: "n", Value: int32(2)}, {Key: "msg", Value: "sluice"}},
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert: %v", err)
	}

	tests := []struct {
		name    string
		filter  bson.D
		wantID  string
		wantMsg string
	}{
		{"by _id", bson.D{{Key: "_id", Value: "b"}}, "b", "sluice"},
		{"by field", bson.D{{Key: "n", Value: int32(1)}}, "a", "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				ID  string `bson:"_id"`
				Msg string `bson:"msg"`
			}
			if err := coll.FindOne(ctx, tc.filter).Decode(&got); err != nil {
				t.Fatalf("find %v: %v", tc.filter, err)
			}
			if got.ID != tc.wantID || got.Msg != tc.wantMsg {
				t.Fatalf("find %v = %+v, want _id=%s msg=%s", tc.filter, got, tc.wantID, tc.wantMsg)
			}
		})
	}
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil || n != 2 {
		t.Fatalf("CountDocuments = %d, %v; want 2", n, err)
	}
}

// dropCollection drops a test collection, bounded in time: a stuck server
// must not hang the test binary.
func dropCollection(coll *mongo.Collection) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = coll.Drop(ctx)
}

func disconnect(client *mongo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = client.Disconnect(ctx)
}

func TestElasticsearch(t *testing.T) {
	esURL, user, pass := testenv.ElasticsearchURL(t)
	flavor := testenv.ElasticsearchFlavor()
	ctx := ctxFor(t, 60*time.Second)
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{esURL}, Username: user, Password: pass})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	// Requests go through the transport: the client's own methods refuse a
	// server that is not Elasticsearch (OpenSearch), the sink does the same.
	tp := es.Transport

	info, err := esapi.InfoRequest{}.Do(ctx, tp)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	var infoBody struct {
		Version struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	decode(t, info.Body, info.IsError(), info.String(), &infoBody)
	wantDist, wantVersion := "", "8."
	if flavor == "opensearch" {
		wantDist, wantVersion = "opensearch", "2.19."
	}
	if infoBody.Version.Distribution != wantDist || !strings.HasPrefix(infoBody.Version.Number, wantVersion) {
		t.Fatalf("server reports %q %q, want %q %s* (flavor %s)", infoBody.Version.Distribution, infoBody.Version.Number, wantDist, wantVersion, flavor)
	}

	index := unique("smoke")
	t.Cleanup(func() { _, _ = esapi.IndicesDeleteRequest{Index: []string{index}}.Do(context.Background(), tp) })
	res, err := esapi.IndexRequest{Index: index, DocumentID: "doc-1", Body: strings.NewReader(`{"msg":"hello sluice","n":7}`)}.Do(ctx, tp)
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	var indexed struct {
		ID string `json:"_id"`
	}
	decode(t, res.Body, res.IsError(), res.String(), &indexed)
	if indexed.ID != "doc-1" {
		t.Fatalf("indexed _id %q, want doc-1", indexed.ID)
	}

	// Neither server makes a document searchable before a refresh (OpenSearch
	// refreshes every second, ZincSearch indexes asynchronously): poll.
	type hit struct {
		ID     string `json:"_id"`
		Source struct {
			Msg string `json:"msg"`
			N   int    `json:"n"`
		} `json:"_source"`
	}
	var hits []hit
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := esapi.SearchRequest{Index: []string{index}, Body: strings.NewReader(`{"query":{"match":{"msg":"sluice"}}}`)}.Do(ctx, tp)
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		var body struct {
			Hits struct {
				Hits []hit `json:"hits"`
			} `json:"hits"`
		}
		decode(t, res.Body, res.IsError(), res.String(), &body)
		if hits = body.Hits.Hits; len(hits) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(hits) != 1 || hits[0].ID != "doc-1" || hits[0].Source.Msg != "hello sluice" || hits[0].Source.N != 7 {
		t.Fatalf("search hits = %+v, want one doc-1 {hello sluice 7}", hits)
	}
}

func decode(t *testing.T, body interface{ Read([]byte) (int, error) }, isErr bool, status string, v any) {
	t.Helper()
	if isErr {
		t.Fatalf("elasticsearch error: %s", status)
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		t.Fatalf("decoding response: %v", err)
	}
}

func TestRedis(t *testing.T) {
	addr := testenv.RedisAddr(t)
	ctx := ctxFor(t, 10*time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()

	if got, err := rdb.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG", got, err)
	}
	key := unique("smoke")
	if err := rdb.Set(ctx, key, "hello sluice", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := rdb.Get(ctx, key).Result()
	if err != nil || got != "hello sluice" {
		t.Fatalf("GET = %q, %v; want hello sluice", got, err)
	}
	if _, err := rdb.Get(ctx, key+"-missing").Result(); err != redis.Nil {
		t.Fatalf("GET missing key: err = %v, want redis.Nil", err)
	}
}

// TestMongoManyUpdateStatements guards the FerretDB patch (ferretdb.patch):
// unpatched FerretDB v1.24.0 hangs on one update command whose statements
// match more than ~99 existing documents, and finds _id by a table scan.
func TestMongoManyUpdateStatements(t *testing.T) {
	uri := testenv.MongoURI(t)
	ctx := ctxFor(t, 60*time.Second)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer disconnect(client)
	coll := client.Database("sluice_testenv").Collection(strings.ReplaceAll(unique("upserts"), "-", "_"))
	defer dropCollection(coll)

	const n = 300
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: fmt.Sprintf("id-%04d", i)}, {Key: "v", Value: int32(0)}}
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert: %v", err)
	}

	// The driver sends these as a single update command with n statements,
	// every one matching an existing document, plus n new upserts.
	models := make([]mongo.WriteModel, 0, 2*n)
	for i := 0; i < 2*n; i++ {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: fmt.Sprintf("id-%04d", i)}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(1)}}}}).
			SetUpsert(true))
	}
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := coll.BulkWrite(bctx, models)
	if err != nil {
		t.Fatalf("bulk upsert of %d statements: %v (unpatched FerretDB hangs here)", len(models), err)
	}
	t.Logf("%d upserts in one command took %v", len(models), time.Since(start))
	if res.MatchedCount != n || res.ModifiedCount != n || res.UpsertedCount != n {
		t.Fatalf("matched=%d modified=%d upserted=%d, want %d each", res.MatchedCount, res.ModifiedCount, res.UpsertedCount, n)
	}
	if got, err := coll.CountDocuments(ctx, bson.D{{Key: "v", Value: int32(1)}}); err != nil || got != 2*n {
		t.Fatalf("documents with v=1: %d, %v; want %d", got, err, 2*n)
	}
}
