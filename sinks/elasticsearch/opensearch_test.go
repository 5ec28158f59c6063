package elasticsearch_test

// Tests that only a real engine can answer: they run against the OpenSearch
// node of the local test stack (`make testenv`) and are skipped when the
// stack serves the Elasticsearch API with ZincSearch instead.

import (
	"context"
	"github.com/sluicehq/sluice/internal/testwait"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
)

// osDo sends one request to the OpenSearch node and returns status and body.
func osDo(t *testing.T, base, method, path, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// osMust is osDo that fails the test unless the status is 2xx.
func osMust(t *testing.T, base, method, path, body string) []byte {
	t.Helper()
	status, b := osDo(t, base, method, path, body)
	if status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	return b
}

// osCount refreshes index and reads its document count through the Count API.
func osCount(t *testing.T, base, index string) int {
	t.Helper()
	osMust(t, base, http.MethodPost, "/"+index+"/_refresh", "")
	return int(gjson.GetBytes(osMust(t, base, http.MethodGet, "/"+index+"/_count", ""), "count").Int())
}

// osIndexName returns a fresh index name and deletes that index at the end.
func osIndexName(t *testing.T, base, what string) string {
	t.Helper()
	name := "sluice-test-" + what + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		// A blocked index cannot be deleted before its block is lifted.
		_, _ = osDo(t, base, http.MethodPut, "/"+name+"/_settings", `{"index.blocks.read_only_allow_delete":null}`)
		_, _ = osDo(t, base, http.MethodPut, "/"+name+"/_settings", `{"index.blocks.write":null}`)
		_, _ = osDo(t, base, http.MethodDelete, "/"+name, "")
	})
	return name
}

func osSink(t *testing.T, base, index string, mutate func(*essink.Config)) (*essink.Sink, func(string, ...string) float64) {
	t.Helper()
	s, reg := newSink(t, base, func(c *essink.Config) {
		c.Flavor = essink.FlavorOpenSearch
		c.Index = *pipeline.MustParseTemplate(index)
		c.Timeout = pipeline.Duration(30 * time.Second)
		if mutate != nil {
			mutate(c)
		}
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	items := func(name string, labels ...string) float64 {
		return testutil.ToFloat64(mustVec(t, reg, name, labels...))
	}
	return s, items
}

func bodyEvent(id, body string, ts time.Time) *pipeline.Event {
	return &pipeline.Event{ID: id, Key: []byte(id), Time: ts, Payload: []byte(body), Body: []byte(body)}
}

// TestOpenSearchMappingConflictDeadLettered: a field that is a string in one
// document and an object in the next. The engine answers 400 for that item
// only; the sink dead-letters it with the engine's reason and the rest is
// stored.
func TestOpenSearchMappingConflictDeadLettered(t *testing.T) {
	base := testenv.OpenSearchURL(t)
	index := osIndexName(t, base, "mapping")
	s, items := osSink(t, base, index, nil)

	// The first document makes "customer" a text field.
	if err := s.Write(context.Background(), []*pipeline.Event{bodyEvent("e0", `{"customer":"acme"}`, day)}); err != nil {
		t.Fatal(err)
	}
	batch := []*pipeline.Event{
		bodyEvent("e1", `{"customer":"globex"}`, day),
		bodyEvent("e2", `{"customer":{"name":"initech"}}`, day),
		bodyEvent("e3", `{"customer":"umbrella"}`, day),
	}
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if keys(ok) != "e1,e3" || len(retry) != 0 || keys(perm) != "e2" {
		t.Fatalf("ok=%s retry=%s perm=%s; want ok=e1,e3 perm=e2", keys(ok), keys(retry), keys(perm))
	}
	reason := perm["e2"].Error()
	for _, want := range []string{"400", "mapper_parsing_exception", "failed to parse field [customer]"} {
		if !strings.Contains(reason, want) {
			t.Errorf("dead-letter reason %q lacks %q", reason, want)
		}
	}
	if got := items("sluice_elasticsearch_items_total", "failed", "400"); got != 1 {
		t.Errorf("items_total{failed,400} = %v, want 1", got)
	}
	if n := osCount(t, base, index); n != 3 {
		t.Fatalf("%s holds %d documents, want 3 (e0, e1, e3)", index, n)
	}
}

// TestOpenSearchCreateExistingIsStored: with action create, a redelivered
// document gets 409 version_conflict_engine_exception from the engine; the
// sink counts it as stored and nothing is duplicated or overwritten.
func TestOpenSearchCreateExistingIsStored(t *testing.T) {
	base := testenv.OpenSearchURL(t)
	index := osIndexName(t, base, "create")
	s, items := osSink(t, base, index, func(c *essink.Config) { c.Action = essink.ActionCreate })
	var batch []*pipeline.Event
	for i := range 20 {
		batch = append(batch, event(i, 0, day))
	}
	for round := range 2 {
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatalf("write %d: %v", round, err)
		}
	}
	if got := items("sluice_elasticsearch_items_total", "created", "201"); got != 20 {
		t.Errorf("items_total{created,201} = %v, want 20", got)
	}
	if got := items("sluice_elasticsearch_items_total", "exists", "409"); got != 20 {
		t.Errorf("items_total{exists,409} = %v, want 20", got)
	}
	if n := osCount(t, base, index); n != 20 {
		t.Fatalf("%s holds %d documents, want 20", index, n)
	}
	versions := osMust(t, base, http.MethodPost, "/"+index+"/_search", `{"size":50,"version":true}`)
	for _, v := range gjson.GetBytes(versions, "hits.hits.#._version").Array() {
		if v.Int() != 1 {
			t.Fatalf("a document has _version %d after a redelivered create, want 1: %s", v.Int(), versions)
		}
	}
}

// TestOpenSearch429OnlyRejectedRetried: a batch spread over two indices, one
// of which the engine refuses with 429 (the flood-stage disk block,
// index.blocks.read_only_allow_delete, which OpenSearch reports per item as
// TOO_MANY_REQUESTS). Only those items come back retryable, classed
// throttled; once the block is lifted, writing just them stores everything,
// and the other index's documents were written exactly once.
func TestOpenSearch429OnlyRejectedRetried(t *testing.T) {
	base := testenv.OpenSearchURL(t)
	prefix := osIndexName(t, base, "throttle")
	day2 := day.Add(24 * time.Hour)
	open, blocked := prefix+"-"+day.Format("2006.01.02"), prefix+"-"+day2.Format("2006.01.02")
	t.Cleanup(func() {
		_, _ = osDo(t, base, http.MethodPut, "/"+blocked+"/_settings", `{"index.blocks.read_only_allow_delete":null}`)
		_, _ = osDo(t, base, http.MethodDelete, "/"+open+","+blocked, "")
	})
	osMust(t, base, http.MethodPut, "/"+blocked, `{"settings":{"number_of_replicas":0}}`)
	osMust(t, base, http.MethodPut, "/"+blocked+"/_settings", `{"index.blocks.read_only_allow_delete":true}`)
	s, items := osSink(t, base, prefix+"-{2006.01.02}", nil)

	var batch []*pipeline.Event
	for i := range 20 {
		ts := day
		if i%2 == 1 {
			ts = day2
		}
		batch = append(batch, event(i, 0, ts))
	}
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if len(ok) != 10 || len(retry) != 10 || len(perm) != 0 {
		t.Fatalf("ok=%s retry=%s perm=%s; want the 10 even ids stored, the 10 odd ones retryable", keys(ok), keys(retry), keys(perm))
	}
	var again []*pipeline.Event
	for i, ev := range batch {
		_, isRetry := retry[ev.ID]
		if isRetry != (i%2 == 1) {
			t.Fatalf("%s retryable=%v, but it went to %s", ev.ID, isRetry, map[bool]string{true: blocked, false: open}[i%2 == 1])
		}
		if isRetry {
			if c := pipeline.ErrorClass(retry[ev.ID]); c != "throttled" {
				t.Errorf("%s: error class %q, want throttled (%v)", ev.ID, c, retry[ev.ID])
			}
			again = append(again, ev)
		}
	}
	if got := items("sluice_elasticsearch_items_total", "retry", "429"); got != 10 {
		t.Errorf("items_total{retry,429} = %v, want 10", got)
	}

	osMust(t, base, http.MethodPut, "/"+blocked+"/_settings", `{"index.blocks.read_only_allow_delete":null}`)
	if err := s.Write(context.Background(), again); err != nil {
		t.Fatalf("retrying the throttled items: %v", err)
	}
	for _, index := range []string{open, blocked} {
		if n := osCount(t, base, index); n != 10 {
			t.Errorf("%s holds %d documents, want 10", index, n)
		}
		versions := osMust(t, base, http.MethodPost, "/"+index+"/_search", `{"size":50,"version":true}`)
		for _, v := range gjson.GetBytes(versions, "hits.hits.#._version").Array() {
			if v.Int() != 1 {
				t.Errorf("%s: a document has _version %d, want 1 (written once)", index, v.Int())
			}
		}
	}
}

// TestOpenSearchWriteBlockRetriedNotDeadLettered: an index with
// index.blocks.write: true answers 403 cluster_block_exception per item. That
// is the cluster's state, not the document's fault: the items come back
// retryable, classed blocked, with the engine's reason — never dead-lettered.
func TestOpenSearchWriteBlockRetriedNotDeadLettered(t *testing.T) {
	base := testenv.OpenSearchURL(t)
	index := osIndexName(t, base, "blocked")
	osMust(t, base, http.MethodPut, "/"+index, `{"settings":{"number_of_replicas":0,"index.blocks.write":true}}`)
	s, items := osSink(t, base, index, nil)
	batch := []*pipeline.Event{event(0, 0, day), event(1, 0, day)}
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if len(ok) != 0 || keys(retry) != "e0,e1" || len(perm) != 0 {
		t.Fatalf("ok=%s retry=%s perm=%s; want both retryable", keys(ok), keys(retry), keys(perm))
	}
	for id, e := range retry {
		if c := pipeline.ErrorClass(e); c != "blocked" {
			t.Errorf("%s: error class %q, want blocked", id, c)
		}
		if !strings.Contains(e.Error(), "cluster_block_exception") || !strings.Contains(e.Error(), "index write") {
			t.Errorf("%s: error %q lacks the engine's reason", id, e)
		}
	}
	if got := items("sluice_elasticsearch_items_total", "retry", "403"); got != 2 {
		t.Errorf("items_total{retry,403} = %v, want 2", got)
	}
	osMust(t, base, http.MethodPut, "/"+index+"/_settings", `{"index.blocks.write":null}`)
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatalf("after lifting the block: %v", err)
	}
	if n := osCount(t, base, index); n != 2 {
		t.Fatalf("%s holds %d documents, want 2", index, n)
	}
}
