package elasticsearch_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
)

var day = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newSink(t testing.TB, url string, mutate func(*essink.Config)) (*essink.Sink, *prometheus.Registry) {
	t.Helper()
	var c essink.Config
	c.SetDefaults()
	c.URLs = []string{url}
	c.Index = *pipeline.MustParseTemplate("crm-events-{2006.01.02}")
	c.Timeout = pipeline.Duration(5 * time.Second)
	if mutate != nil {
		mutate(&c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := essink.New(pipeline.NewBuildContext("test", "test", nil, reg), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, reg
}

// event i carries want (the status the fake should answer) in its body.
func event(i int, want int, ts time.Time) *pipeline.Event {
	body := fmt.Sprintf(`{"id":"e%d","type":"email.delivered","want":%d,"amount":%d}`, i, want, i)
	return &pipeline.Event{ID: "e" + strconv.Itoa(i), Key: []byte("k" + strconv.Itoa(i%7)), Time: ts, Payload: []byte(body), Body: []byte(body)}
}

func wantFromBody(op bulkOp, attempt int) int {
	var src = op.Source
	if op.Action == "update" {
		src = []byte(strings.TrimSuffix(strings.TrimPrefix(string(src), `{"doc":`), `,"doc_as_upsert":true}`))
	}
	var want int
	fmt.Sscanf(strings.SplitN(strings.SplitN(string(src), `"want":`, 2)[1], ",", 2)[0], "%d", &want)
	return want
}

// outcome sorts a Write's result into stored, retryable and permanent ids.
func outcome(t *testing.T, batch []*pipeline.Event, err error) (ok, retry, perm map[string]error) {
	t.Helper()
	ok, retry, perm = map[string]error{}, map[string]error{}, map[string]error{}
	failed := map[int]error{}
	var be *pipeline.BatchError
	switch {
	case err == nil:
	case errors.As(err, &be):
		for _, f := range be.Failures {
			failed[f.Index] = f.Err
		}
	default:
		for i := range batch {
			failed[i] = err
		}
	}
	for i, ev := range batch {
		e, bad := failed[i]
		switch {
		case !bad:
			ok[ev.ID] = nil
		case pipeline.IsPermanent(e):
			perm[ev.ID] = e
		default:
			retry[ev.ID] = e
		}
	}
	return ok, retry, perm
}

func keys(m map[string]error) string {
	var out []string
	for i := range 100 {
		if _, ok := m["e"+strconv.Itoa(i)]; ok {
			out = append(out, "e"+strconv.Itoa(i))
		}
	}
	return strings.Join(out, ",")
}

// TestBulkItemsClassified sends one batch with every kind of item answer a
// cluster gives and checks each event ends exactly where it must.
func TestBulkItemsClassified(t *testing.T) {
	// want per event index: 0 = the fake's default (201/200, 409 on create of existing)
	wants := []int{201, 200, 409, 429, 400, 503, 201, 0}
	cases := []struct {
		name                string
		action              string
		preload             bool // e2 already stored, so create answers 409
		ok, retry, perm     string
		permReasonSubstring string
	}{
		{name: "index", action: "index", ok: "e0,e1,e6,e7", retry: "e2,e3,e5", perm: "e4", permReasonSubstring: "failed to parse field [amount]"},
		{name: "create", action: "create", ok: "e0,e1,e2,e6,e7", retry: "e3,e5", perm: "e4", permReasonSubstring: "document_parsing_exception"},
		{name: "update", action: "update", ok: "e0,e1,e6,e7", retry: "e2,e3,e5", perm: "e4", permReasonSubstring: "For input string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeES(t)
			f.decide = wantFromBody
			s, reg := newSink(t, f.URL(), func(c *essink.Config) { c.Action = tc.action })
			var batch []*pipeline.Event
			for i, w := range wants {
				batch = append(batch, event(i, w, day))
			}
			ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
			if keys(ok) != tc.ok || keys(retry) != tc.retry || keys(perm) != tc.perm {
				t.Fatalf("ok=%s retry=%s perm=%s; want ok=%s retry=%s perm=%s", keys(ok), keys(retry), keys(perm), tc.ok, tc.retry, tc.perm)
			}
			for id, e := range perm {
				if !strings.Contains(e.Error(), tc.permReasonSubstring) {
					t.Errorf("%s: dead-letter reason %q lacks %q", id, e, tc.permReasonSubstring)
				}
			}
			if got := pipeline.ErrorClass(retry["e3"]); got != "throttled" {
				t.Errorf("429 error class = %q, want throttled", got)
			}
			if n := len(f.bulkCalls()); n != 1 {
				t.Errorf("%d bulk requests, want 1", n)
			}
			if got := testutil.ToFloat64(mustVec(t, reg, "sluice_elasticsearch_items_total", "retry", "429")); got != 1 {
				t.Errorf("items_total{retry,429} = %v, want 1", got)
			}
			if got := testutil.ToFloat64(mustVec(t, reg, "sluice_elasticsearch_items_total", "failed", "400")); got != 1 {
				t.Errorf("items_total{failed,400} = %v, want 1", got)
			}
		})
	}
}

// mustVec reads one series of a counter vector from reg.
func mustVec(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i, lp := range m.GetLabel() {
				if i >= len(labels) || lp.GetValue() != labels[i] {
					match = false
				}
			}
			if match {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return 0 })
}

// TestRequestTooLargeIsSplit: a 413 splits the request until it fits; a
// document that is too large alone is dead-lettered, nothing else is.
func TestRequestTooLargeIsSplit(t *testing.T) {
	const limit = 2000
	f := newFakeES(t)
	f.reject = func(body []byte) (int, string) {
		if len(body) > limit {
			return http.StatusRequestEntityTooLarge, "" // what ES's HTTP layer sends: no body
		}
		return 0, ""
	}
	s, _ := newSink(t, f.URL(), nil)
	var batch []*pipeline.Event
	for i := range 40 {
		batch = append(batch, event(i, 0, day))
	}
	huge := event(40, 0, day)
	huge.Body = []byte(`{"id":"e40","want":0,"pad":"` + strings.Repeat("x", limit) + `"}`)
	batch = append(batch, huge)
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if len(ok) != 40 || len(retry) != 0 || len(perm) != 1 || perm["e40"] == nil {
		t.Fatalf("ok=%d retry=%v perm=%v", len(ok), retry, perm)
	}
	if !strings.Contains(perm["e40"].Error(), "too large") {
		t.Errorf("reason %q", perm["e40"])
	}
	if f.docCount() != 40 {
		t.Fatalf("fake stored %d docs, want 40", f.docCount())
	}
	for _, ops := range f.bulkCalls() {
		if len(ops) == 0 {
			t.Fatal("empty bulk request accepted")
		}
	}
}

// TestWholeRequestFailures: every status that fails a whole request fails
// the whole batch retryably, with the cluster's reason.
func TestWholeRequestFailures(t *testing.T) {
	cases := []struct {
		status int
		body   string
		class  string
		reason string
	}{
		{503, err503, "unavailable", "no master"},
		{429, err429, "throttled", "rejected execution"},
		{401, err401, "auth", "check the credentials"},
		{502, "<html>Bad Gateway</html>", "unavailable", "Bad Gateway"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			f := newFakeES(t)
			f.reject = func([]byte) (int, string) { return tc.status, tc.body }
			s, _ := newSink(t, f.URL(), nil)
			batch := []*pipeline.Event{event(1, 0, day), event(2, 0, day)}
			err := s.Write(context.Background(), batch)
			var be *pipeline.BatchError
			if err == nil || pipeline.IsPermanent(err) || errors.As(err, &be) {
				t.Fatalf("want one retryable error for the batch, got %v", err)
			}
			if c := pipeline.ErrorClass(err); c != tc.class {
				t.Errorf("class %q, want %q", c, tc.class)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q lacks %q", err, tc.reason)
			}
			if s.Ready() == nil {
				t.Error("Ready() is nil after a failed request")
			}
		})
	}
}

// TestBulkBodyEncoding checks the NDJSON the sink sends: action lines,
// templated ids and routing, escaping, update wrapping, and bodies sent as
// they are except when spread over lines.
func TestBulkBodyEncoding(t *testing.T) {
	f := newFakeES(t)
	s, _ := newSink(t, f.URL(), func(c *essink.Config) {
		c.Index = *pipeline.MustParseTemplate(`crm-{{source}}-{2006.01}`)
		c.ID = pipeline.MustParseTemplate(`{{source}}:{{id}}`)
		c.Routing = pipeline.MustParseTemplate(`{{account}}`)
		c.Action = essink.ActionUpdate
		c.Compression = "gzip"
	})
	batch := []*pipeline.Event{
		{ID: "a", Time: day, Body: []byte(`{"id":"a\"1","source":"sf","account":"acc\\1","n":1.50}`)},
		{ID: "b", Time: day, Body: []byte("{\n  \"id\": \"b\",\n  \"source\": \"hs\",\n  \"account\": \"x\"\n}")},
		{ID: "c", Time: day, Body: []byte(`{"id":"c","account":"x"}`)},         // no source: cannot name the index
		{ID: "d", Time: time.Time{}, Body: []byte(`{"source":"sf","id":"d"}`)}, // no event time, no account
		{ID: "e", Time: day}, // no body
	}
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if len(ok) != 2 || len(retry) != 0 || len(perm) != 3 {
		t.Fatalf("ok=%v retry=%v perm=%v", ok, retry, perm)
	}
	ops := f.bulkCalls()[0]
	want := []bulkOp{
		{Action: "update", Index: "crm-sf-2026.11", ID: `sf:a"1`, Routing: `acc\1`, Source: []byte(`{"doc":{"id":"a\"1","source":"sf","account":"acc\\1","n":1.50},"doc_as_upsert":true}`)},
		{Action: "update", Index: "crm-hs-2026.11", ID: `hs:b`, Routing: "x", Source: []byte(`{"doc":{"id":"b","source":"hs","account":"x"},"doc_as_upsert":true}`)},
	}
	if len(ops) != len(want) {
		t.Fatalf("sent %d ops, want %d", len(ops), len(want))
	}
	for i := range want {
		if ops[i].Action != want[i].Action || ops[i].Index != want[i].Index || ops[i].ID != want[i].ID || ops[i].Routing != want[i].Routing || string(ops[i].Source) != string(want[i].Source) {
			t.Errorf("op %d = %+v (source %s), want %+v (source %s)", i, ops[i], ops[i].Source, want[i], want[i].Source)
		}
	}
	if h := f.headers[len(f.headers)-1]; h.Get("Content-Encoding") != "gzip" {
		t.Errorf("compression: gzip sent Content-Encoding %q", h.Get("Content-Encoding"))
	}
	for id, reason := range map[string]string{"c": `no field "source"`, "d": "no event time", "e": "no body"} {
		if perm[id] == nil || !strings.Contains(perm[id].Error(), reason) {
			t.Errorf("%s: %v, want a permanent error with %q", id, perm[id], reason)
		}
	}
}

// TestParallelismKeepsPerDocumentOrder: with parallel requests, repeated
// writes of one document still land in batch order (the last one wins).
func TestParallelismKeepsPerDocumentOrder(t *testing.T) {
	f := newFakeES(t)
	s, _ := newSink(t, f.URL(), func(c *essink.Config) {
		c.Parallelism = 4
		c.MaxBatch.Events = 5
	})
	var batch []*pipeline.Event
	for i := range 200 {
		id := "doc" + strconv.Itoa(i%20)
		body := fmt.Sprintf(`{"id":%q,"version":%d}`, id, i)
		batch = append(batch, &pipeline.Event{ID: id, Time: day, Body: []byte(body)})
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if f.docCount() != 20 {
		t.Fatalf("%d docs, want 20", f.docCount())
	}
	for i := 180; i < 200; i++ {
		d, _ := f.doc("crm-events-2026.11.23", "doc"+strconv.Itoa(i%20))
		if want := fmt.Sprintf(`"version":%d`, i); !strings.Contains(string(d), want) {
			t.Errorf("doc%d = %s, want the last write (%s)", i%20, d, want)
		}
	}
	calls := f.bulkCalls()
	if len(calls) < 40 {
		t.Errorf("%d bulk requests, want at least 40 with max_batch.events 5", len(calls))
	}
	for _, ops := range calls {
		if len(ops) > 5 {
			t.Errorf("request of %d ops over max_batch.events", len(ops))
		}
	}
}

// TestMaxBatchBytesSplits: a batch is cut into requests under max_batch.bytes.
func TestMaxBatchBytesSplits(t *testing.T) {
	f := newFakeES(t)
	s, reg := newSink(t, f.URL(), func(c *essink.Config) { c.MaxBatch.Bytes = 4096 })
	var batch []*pipeline.Event
	for i := range 100 {
		batch = append(batch, event(i, 0, day))
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, ops := range f.bulkCalls() {
		size := 0
		for _, op := range ops {
			size += len(op.Source) + 60
		}
		if size > 4096+200 {
			t.Errorf("request of about %d bytes", size)
		}
		total += len(ops)
	}
	if total != 100 || len(f.bulkCalls()) < 2 {
		t.Fatalf("%d ops in %d requests", total, len(f.bulkCalls()))
	}
	if got := testutil.ToFloat64(mustVec(t, reg, "sluice_elasticsearch_items_total", "created", "201")); got != 100 {
		t.Errorf("items_total{created,201} = %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "sluice_elasticsearch_sent_bytes_total", "sluice_elasticsearch_bulk_duration_seconds"); n != 2 {
		t.Errorf("byte and latency metrics missing (%d series)", n)
	}
}

// TestStart covers what Start proves before the first event.
func TestStart(t *testing.T) {
	t.Run("bad credentials", func(t *testing.T) {
		f := newFakeES(t)
		f.reject = func([]byte) (int, string) { return 401, err401 }
		// GET / open, _bulk guarded (like ZincSearch or anonymous-read clusters).
		s, _ := newSink(t, f.URL(), func(c *essink.Config) { c.Username, c.Password = "crm-writer", "nope" })
		err := s.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") || !strings.Contains(err.Error(), `"crm-writer"`) || strings.Contains(err.Error(), "nope") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("opensearch without flavor", func(t *testing.T) {
		f := newFakeES(t)
		f.openSearch = true
		s, _ := newSink(t, f.URL(), nil)
		if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "set flavor: opensearch") {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("unreachable is not fatal", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		s, _ := newSink(t, "http://"+addr, nil)
		if err := s.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if s.Ready() == nil {
			t.Fatal("Ready() nil while unreachable")
		}
	})
	t.Run("index template", func(t *testing.T) {
		f := newFakeES(t)
		file := t.TempDir() + "/t.json"
		writeFile(t, file, `{"index_patterns":["crm-events-*"],"template":{"mappings":{"properties":{"amount":{"type":"long"}}}}}`)
		s, _ := newSink(t, f.URL(), func(c *essink.Config) { c.IndexTemplate = &essink.IndexTemplate{Name: "crm-events", File: file} })
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range f.paths {
			if strings.HasPrefix(p, "PUT /_index_template/crm-events?") && strings.Contains(p, "create=true") {
				found = true
			}
		}
		if !found {
			t.Fatalf("no PUT _index_template/crm-events?create=true in %v", f.paths)
		}
	})
}

// TestOpenSearchFlavor: the official client refuses a server that answers
// as OpenSearch; flavor: opensearch writes to it.
func TestOpenSearchFlavor(t *testing.T) {
	f := newFakeES(t)
	f.openSearch = true
	strict, _ := newSink(t, f.URL(), nil)
	if err := strict.Write(context.Background(), []*pipeline.Event{event(1, 0, day)}); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Fatalf("flavor elasticsearch against OpenSearch: %v", err)
	}
	s, _ := newSink(t, f.URL(), func(c *essink.Config) { c.Flavor = essink.FlavorOpenSearch })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	batch := []*pipeline.Event{event(1, 0, day), event(2, 400, day)}
	f.decide = wantFromBody
	ok, retry, perm := outcome(t, batch, s.Write(context.Background(), batch))
	if len(ok) != 1 || len(retry) != 0 || len(perm) != 1 {
		t.Fatalf("ok=%v retry=%v perm=%v", ok, retry, perm)
	}
}

// TestThroughTheRunner runs a real pipeline against a cluster that is down
// (connections refused, then 503s), then throttles some items and rejects
// one document: everything else is stored exactly once per id, the bad
// document is dead-lettered with Elasticsearch's reason, every batch acks.
func TestThroughTheRunner(t *testing.T) {
	f := newFakeES(t)
	var phase atomic.Int32 // 0: 503 for everything, 1: normal
	f.reject = func([]byte) (int, string) {
		if phase.Load() == 0 {
			return 503, err503
		}
		return 0, ""
	}
	f.decide = func(op bulkOp, attempt int) int {
		switch {
		case op.ID == "e13":
			return 400
		case strings.HasSuffix(op.ID, "7") && attempt < 3:
			return 429
		case strings.HasSuffix(op.ID, "5") && attempt < 2:
			return 503
		}
		return 0
	}
	// Refuse connections first: point the sink at a proxy that is closed.
	down := make(chan struct{})
	proxy := newFlakyProxy(t, strings.TrimPrefix(f.URL(), "http://"), down)

	const batches, per = 10, 20
	src := pipelinetest.NewFuncSource(func(i int) []*pipeline.Event {
		if i >= batches {
			return nil
		}
		var b []*pipeline.Event
		for j := range per {
			b = append(b, event(i*per+j, 0, day.Add(time.Duration(i)*24*time.Hour)))
		}
		return b
	})
	dead := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, dead)
	essink.Register(reg)
	doc := fmt.Sprintf(`name: es-runner
source: {mem: {}}
sinks:
  - elasticsearch: {urls: ["http://%s"], index: "crm-events-{2006.01.02}", max_batch: {events: 7}}
dead_letter: {mem: {index: 0}}
batch: {max_events: %d, max_wait: 5ms}
retry: {initial_interval: 10ms, max_interval: 50ms}
`, proxy, per)
	run := pipelinetest.Start(t, "es.yaml", doc, reg)
	time.Sleep(300 * time.Millisecond) // connections refused
	if f.docCount() != 0 || src.Acks()[0].Acked {
		t.Fatal("something was stored or acked while the cluster was unreachable")
	}
	close(down)
	time.Sleep(300 * time.Millisecond) // 503 for every request
	if f.docCount() != 0 {
		t.Fatal("stored while the cluster answered 503")
	}
	phase.Store(1)
	if err := run.Wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, a := range src.Acks() {
		if !a.Acked || a.Err != nil || a.Calls != 1 {
			t.Fatalf("batch %d ack %+v", i, a)
		}
	}
	for i := range batches * per {
		ts := day.Add(time.Duration(i/per) * 24 * time.Hour)
		_, ok := f.doc("crm-events-"+ts.Format("2006.01.02"), "e"+strconv.Itoa(i))
		if ok == (i == 13) {
			t.Errorf("e%d stored=%v", i, ok)
		}
	}
	if f.docCount() != batches*per-1 {
		t.Errorf("%d docs stored, want %d", f.docCount(), batches*per-1)
	}
	dl := dead.Writes()
	if len(dl) != 1 || dl[0].ID != "e13" || !strings.Contains(dl[0].Body, "failed to parse field [amount]") {
		t.Fatalf("dead letters: %+v", dl)
	}
}

// TestConfigErrors: mistakes are reported by key, with the line.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, sink, want string
	}{
		{"ok", `{urls: ["http://es:9200"], index: "crm-{2006.01.02}", action: create, max_batch: {events: 500, bytes: 8MiB}, compression: gzip, flavor: opensearch}`, ""},
		{"missing index", `{urls: ["http://es:9200"]}`, "sinks[0].elasticsearch.index: required field is missing"},
		{"bad url", `{urls: ["es:9200"], index: x}`, `urls[0]: "es:9200" is not an http:// or https:// URL`},
		{"bad action", `{urls: ["http://es:9200"], index: x, action: upsert}`, "action: must be index, create or update"},
		{"both auths", `{urls: ["http://es:9200"], index: x, api_key: k, username: u, password: p}`, "api_key: use either api_key or username/password"},
		{"user without password", `{urls: ["http://es:9200"], index: x, username: u}`, "password: username is set without a password"},
		{"bad flavor", `{urls: ["http://es:9200"], index: x, flavor: solr}`, "flavor: must be elasticsearch or opensearch"},
		{"bad compression", `{urls: ["http://es:9200"], index: x, compression: zstd}`, "compression: must be none or gzip"},
		{"zero events", `{urls: ["http://es:9200"], index: x, max_batch: {events: 0}}`, "max_batch.events: must be at least 1"},
		{"bad template", `{urls: ["http://es:9200"], index: "crm-{{source"}`, "{{ without }}"},
		{"parallelism", `{urls: ["http://es:9200"], index: x, parallelism: 0}`, "parallelism: must be between 1 and 64"},
		{"template file", `{urls: ["http://es:9200"], index: x, index_template: {name: t, file: /nonexistent.json}}`, "index_template.file"},
		{"template body", `{urls: ["http://es:9200"], index: x, index_template: {name: t, body: '{"index_patterns": ["x*"]}'}}`, ""},
		{"template body not JSON", `{urls: ["http://es:9200"], index: x, index_template: {name: t, body: '{"index_patterns": '}}`, "index_template.body: is not valid JSON"},
		{"template without body", `{urls: ["http://es:9200"], index: x, index_template: {name: t}}`, "index_template: needs file or body"},
		{"template with both", `{urls: ["http://es:9200"], index: x, index_template: {name: t, file: x.json, body: '{}'}}`, "index_template: takes file or body, not both"},
		{"typo", `{urls: ["http://es:9200"], index: x, routin: y}`, "did you mean routing?"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := pipeline.NewRegistry()
			pipelinetest.Register(reg, pipelinetest.NewSource())
			essink.Register(reg)
			doc := "name: t\nsource: {mem: {}}\nsinks:\n  - elasticsearch: " + tc.sink + "\n"
			_, err := pipeline.Load("es.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), "es.yaml:4"):
				t.Errorf("error %v has no line", err)
			}
		})
	}
}

// TestItemErrorsOutliveTheResponseBuffer: reasons are read from a reused
// buffer; an error kept by the runner must not change under later writes.
func TestItemErrorsOutliveTheResponseBuffer(t *testing.T) {
	f := newFakeES(t)
	f.decide = wantFromBody
	s, _ := newSink(t, f.URL(), nil)
	batch := []*pipeline.Event{event(1, 400, day), event(2, 201, day)}
	_, _, perm := outcome(t, batch, s.Write(context.Background(), batch))
	before := perm["e1"].Error()
	for i := range 20 {
		b := []*pipeline.Event{event(100+i, 429, day), event(200+i, 201, day)}
		_ = s.Write(context.Background(), b)
	}
	if after := perm["e1"].Error(); after != before || !strings.Contains(after, "document_parsing_exception") {
		t.Fatalf("reason changed from %q to %q", before, after)
	}
}

// TestBadCredentialsFailTheRun: the runner reports Start's error and
// writes nothing.
func TestBadCredentialsFailTheRun(t *testing.T) {
	f := newFakeES(t)
	f.rootStatus = http.StatusUnauthorized
	src := pipelinetest.NewSource([]*pipeline.Event{event(1, 0, day)})
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src)
	essink.Register(reg)
	doc := fmt.Sprintf("name: es-auth\nsource: {mem: {}}\nsinks:\n  - elasticsearch: {urls: [%q], index: x, username: crm-writer, password: wrong-secret}\n", f.URL())
	err := pipelinetest.RunToEnd(t, "es.yaml", doc, reg)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials (401 security_exception") || !strings.Contains(err.Error(), `username ("crm-writer") and password`) {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatal("password in the error")
	}
	if len(f.bulkCalls()) != 0 {
		t.Fatal("documents sent with refused credentials")
	}
}
