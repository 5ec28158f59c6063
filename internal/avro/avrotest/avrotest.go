// Package avrotest is an in-memory schema registry speaking the Confluent
// REST API as documented (the two endpoints sluice uses), for tests.
package avrotest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Registry serves POST /subjects/{subject}/versions and GET
// /schemas/ids/{id}.
type Registry struct {
	URL string
	// Fetches counts GET /schemas/ids/{id} requests.
	Fetches atomic.Int64
	// Fail makes every request answer 503 while set.
	Fail atomic.Bool

	mu       sync.Mutex
	ids      map[string]int // schema text -> id
	schemas  map[int]string
	subjects map[string][]int
}

const contentType = "application/vnd.schemaregistry.v1+json"

// New starts a registry for the test's lifetime.
func New(t testing.TB) *Registry {
	r := &Registry{ids: map[string]int{}, schemas: map[int]string{}, subjects: map[string][]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Add registers schema under subject directly and returns its ID.
func (r *Registry) Add(subject, schema string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.ids[schema]
	if !ok {
		id = len(r.ids) + 1
		r.ids[schema] = id
		r.schemas[id] = schema
	}
	for _, have := range r.subjects[subject] {
		if have == id {
			return id
		}
	}
	r.subjects[subject] = append(r.subjects[subject], id)
	return id
}

// Subject returns the IDs registered under subject.
func (r *Registry) Subject(subject string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.subjects[subject]...)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", contentType)
	if r.Fail.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"error_code": 50003, "message": "unavailable"})
		return
	}
	path := req.URL.Path
	switch {
	case req.Method == http.MethodGet && strings.HasPrefix(path, "/schemas/ids/"):
		r.Fetches.Add(1)
		id, _ := strconv.Atoi(strings.TrimPrefix(path, "/schemas/ids/"))
		r.mu.Lock()
		s, ok := r.schemas[id]
		r.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"error_code": 40403, "message": "Schema " + strconv.Itoa(id) + " not found"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"schema": s})
	case req.Method == http.MethodPost && strings.HasPrefix(path, "/subjects/") && strings.HasSuffix(path, "/versions"):
		subject := strings.TrimSuffix(strings.TrimPrefix(path, "/subjects/"), "/versions")
		var body struct {
			Schema     string `json:"schema"`
			SchemaType string `json:"schemaType"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.Schema == "" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"error_code": 42201, "message": "Invalid schema"})
			return
		}
		if body.SchemaType != "" && body.SchemaType != "AVRO" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"error_code": 42201, "message": "unsupported schema type"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": r.Add(subject, body.Schema)})
	default:
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"error_code": 404, "message": "HTTP 404 Not Found"})
	}
}
