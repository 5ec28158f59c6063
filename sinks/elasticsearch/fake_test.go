package elasticsearch_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
)

// Elasticsearch 8 bulk item bodies in the shape a cluster sends them
// (written after the documented 8.x response format and the error types
// 8.x reports, not captured from a live cluster: none is available here;
// index and id are filled in per item).
const (
	itemCreated = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}}`
	itemUpdated = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","_version":2,"result":"updated","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":7,"_primary_term":1,"status":200}}`
	itemExists  = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[%[3]s]: version conflict, document already exists (current version [1])","index_uuid":"nH3LzKcETaeTkOEKt0kGAw","shard":"0","index":"%[2]s"}}}`
	item429     = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=104853021, replica_bytes=0, all_bytes=104853021, coordinating_operation_bytes=5321, max_coordinating_and_primary_bytes=104857600]"}}}`
	item400     = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","status":400,"error":{"type":"document_parsing_exception","reason":"[1:24] failed to parse field [amount] of type [long] in document with id '%[3]s'. Preview of field's value: 'lots'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"lots\""}}}}`
	item503     = `{"%[1]s":{"_index":"%[2]s","_id":"%[3]s","status":503,"error":{"type":"unavailable_shards_exception","reason":"[%[2]s][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[%[2]s][0]] containing [1] requests]"}}}`

	esRoot = `{"name":"es-node-1","cluster_name":"crm","cluster_uuid":"V3hxnZ5fR3OJpfKDmcOXvQ","version":{"number":"8.15.3","build_flavor":"default","build_type":"docker","build_hash":"f97532e680b555c3a05e73a74c28afb666923018","build_date":"2024-10-09T22:08:00.328917561Z","build_snapshot":false,"lucene_version":"9.11.1","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`
	osRoot = `{"name":"opensearch-node1","cluster_name":"opensearch-cluster","cluster_uuid":"yS7PVhSXQ9a9zvV1kQzQbA","version":{"distribution":"opensearch","number":"2.17.1","build_type":"tar","build_hash":"1893d20797e30110e5877170e44d42275ce5951e","build_date":"2024-09-26T21:59:52.691008096Z","build_snapshot":false,"lucene_version":"9.11.1","minimum_wire_compatibility_version":"7.10.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"}`

	err401 = `{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [crm-writer] for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}}],"type":"security_exception","reason":"unable to authenticate user [crm-writer] for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\"security\", charset=\"UTF-8\"","ApiKey"]}},"status":401}`
	err503 = `{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master];"}],"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master];"},"status":503}`
	err429 = `{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"},"status":429}`
)

// bulkOp is one action of a bulk request as the fake received it.
type bulkOp struct {
	Action, Index, ID, Routing string
	Source                     json.RawMessage
}

// fakeES answers like Elasticsearch 8 (or OpenSearch 2 when openSearch):
// GET / and POST /_bulk, and decides each item's status with decide (nil:
// 201 created, 200 updated for an id it holds). Whole requests can be
// failed with reject (return 0 to answer normally).
type fakeES struct {
	t          testing.TB
	openSearch bool
	decide     func(op bulkOp, attempt int) int
	reject     func(body []byte) (status int, respBody string)
	rootStatus int // answer GET / with this status and err401

	mu       sync.Mutex
	docs     map[string]json.RawMessage // index/id -> source
	attempts map[string]int
	requests int
	bulks    [][]bulkOp
	headers  []http.Header
	paths    []string
	srv      *httptest.Server
}

func newFakeES(t testing.TB) *fakeES {
	f := &fakeES{t: t, docs: map[string]json.RawMessage{}, attempts: map[string]int{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeES) URL() string { return f.srv.URL }

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.openSearch {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	f.requests++
	f.headers = append(f.headers, r.Header.Clone())
	f.paths = append(f.paths, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	f.mu.Unlock()
	body, err := readBody(r)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/" && f.rootStatus != 0:
		w.WriteHeader(f.rootStatus)
		io.WriteString(w, err401)
	case r.Method == http.MethodGet && r.URL.Path == "/":
		if f.openSearch {
			io.WriteString(w, osRoot)
		} else {
			io.WriteString(w, esRoot)
		}
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		io.WriteString(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.bulk(w, body)
	default:
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"error":"no handler for %s %s","status":404}`, r.Method, r.URL.Path)
	}
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = zr
	}
	return io.ReadAll(rd)
}

func (f *fakeES) bulk(w http.ResponseWriter, body []byte) {
	if os.Getenv("FAKE_DUMP") != "" {
		f.t.Logf("bulk body:\n%s", body)
	}
	if f.reject != nil {
		if status, resp := f.reject(body); status != 0 {
			w.WriteHeader(status)
			io.WriteString(w, resp)
			return
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":{"root_cause":[{"type":"action_request_validation_exception","reason":"Validation Failed: 1: no requests added;"}],"type":"action_request_validation_exception","reason":"Validation Failed: 1: no requests added;"},"status":400}`)
		return
	}
	var ops []bulkOp
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		if len(line) == 0 {
			continue
		}
		var meta map[string]struct {
			Index   string `json:"_index"`
			ID      string `json:"_id"`
			Routing string `json:"routing"`
		}
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			f.t.Errorf("bad action line %q: %v", line, err)
			w.WriteHeader(400)
			return
		}
		if !sc.Scan() {
			f.t.Errorf("action without source")
			w.WriteHeader(400)
			return
		}
		src := append([]byte(nil), sc.Bytes()...)
		if !json.Valid(src) {
			f.t.Errorf("source line is not JSON: %q", src)
		}
		for action, m := range meta {
			ops = append(ops, bulkOp{Action: action, Index: m.Index, ID: m.ID, Routing: m.Routing, Source: src})
		}
	}
	f.mu.Lock()
	f.bulks = append(f.bulks, ops)
	var items []string
	errs := false
	for _, op := range ops {
		key := op.Index + "/" + op.ID
		f.attempts[key]++
		_, exists := f.docs[key]
		status := 0
		if f.decide != nil {
			status = f.decide(op, f.attempts[key])
		}
		if status == 0 {
			switch {
			case op.Action == "create" && exists:
				status = 409
			case exists:
				status = 200
			default:
				status = 201
			}
		}
		tmpl := map[int]string{201: itemCreated, 200: itemUpdated, 409: itemExists, 429: item429, 400: item400, 503: item503}[status]
		if tmpl == "" {
			f.t.Fatalf("fake has no body for status %d", status)
		}
		if status < 300 {
			src := op.Source
			if op.Action == "update" {
				src = json.RawMessage(gjson.GetBytes(src, "doc").Raw)
			}
			f.docs[key] = src
		} else {
			errs = true
		}
		items = append(items, fmt.Sprintf(tmpl, op.Action, jsonEscape(op.Index), jsonEscape(op.ID)))
	}
	f.mu.Unlock()
	fmt.Fprintf(w, `{"errors":%t,"took":3,"items":[%s]}`, errs, strings.Join(items, ","))
}

func (f *fakeES) doc(index, id string) (json.RawMessage, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.docs[index+"/"+id]
	return d, ok
}

func (f *fakeES) docCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.docs)
}

func (f *fakeES) bulkCalls() [][]bulkOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]bulkOp(nil), f.bulks...)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newFlakyProxy listens on a local port and, until down is closed, drops
// every connection as soon as it is accepted (the cluster is unreachable);
// after, it forwards to target. It returns its host:port.
func newFlakyProxy(t testing.TB, target string, down <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case <-down:
			default:
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
