package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	filesink "github.com/sluicehq/sluice/sinks/file"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
	"github.com/sluicehq/sluice/sources/generate"
	kinesissource "github.com/sluicehq/sluice/sources/kinesis"
	"github.com/sluicehq/sluice/transforms/decode"
)

// TestKinesisSinkToSourceToFile: generate → kinesis sink → a 4-shard
// stream → kinesis source → decode → file. Every event arrives, and each
// key's events arrive in the order they were generated.
func TestKinesisSinkToSourceToFile(t *testing.T) {
	const total = 3000
	endpoint, mongoURI := testenv.KinesisEndpoint(t), testenv.MongoURI(t)
	stream := "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	testenv.KinesisStream(t, stream, 4)
	reg := pipeline.NewRegistry()
	generate.Register(reg)
	decode.Register(reg)
	filesink.Register(reg)
	kinesissink.Register(reg)
	kinesissource.Register(reg)
	creds := "credentials: {access_key_id: test, secret_access_key: test}"
	run := func(name, doc string, until func() bool) *pipeline.Pipeline {
		t.Helper()
		r := pipelinetest.Start(t, name, doc, reg)
		var err error
		if until != nil {
			testwait.ForEvery(t, 50*time.Millisecond, name+" done", until, func() string { return fmt.Sprintf("stats %+v", r.Pipeline.Stats()) })
			err = r.Stop(t)
		} else {
			err = r.Wait(t)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r.Pipeline
	}
	run("producer.yaml", fmt.Sprintf(`name: producer
source: {generate: {count: %d, duplicates: 0, poison: 0, entities: 300}}
sinks: [{kinesis: {stream: %s, endpoint: %s, %s}}]
`, total, stream, endpoint, creds), nil)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	run("consumer.yaml", fmt.Sprintf(`name: consumer
source:
  kinesis:
    stream: %s
    endpoint: %s
    %s
    consumer_group: e2e
    checkpoint: {mongodb: {uri: %q, database: e2e_%s}}
    poll: {idle_wait: 100ms}
transforms: [{decode: {format: json, id: id}}]
sinks: [{file: {path: %s}}]
`, stream, endpoint, creds, mongoURI, stream[4:], out), func() bool {
		ids, _ := outputIDs(t, out)
		return len(ids) == total
	})
	ids, byKey := outputIDs(t, out)
	if len(ids) != total {
		t.Fatalf("%d distinct events arrived, want %d", len(ids), total)
	}
	for key, seq := range byKey {
		for i := 1; i < len(seq); i++ {
			if genIndex(seq[i]) < genIndex(seq[i-1]) && ids[seq[i]] == 1 {
				t.Fatalf("key %s: %s arrived after %s", key, seq[i], seq[i-1])
			}
		}
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
