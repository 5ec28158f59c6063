package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/generate"
)

// Audit compares what was sent with what the stores hold, read back from
// the stores themselves.
type Audit struct {
	Sent         int64        `json:"sent"`
	Unique       int64        `json:"unique"`
	Poison       int64        `json:"poison"`
	Stores       []StoreCount `json:"stores"`
	DeadLettered int64        `json:"dead_lettered"`
	Lost         int64        `json:"lost"`
	Duplicated   int64        `json:"duplicated"`
}

// StoreCount is one sink's side of the audit.
type StoreCount struct {
	Sink       string `json:"sink"`
	Stored     int64  `json:"stored"`
	Lost       int64  `json:"lost"`
	Duplicated int64  `json:"duplicated"`
}

// Line is the audit's closing line.
func (a Audit) Line() string {
	var stores []string
	for _, s := range a.Stores {
		stores = append(stores, fmt.Sprintf("%s %d", s.Sink, s.Stored))
	}
	return fmt.Sprintf("audit: sent %d, unique %d, stored: %s, dead-lettered %d, lost %d, duplicated %d",
		a.Sent, a.Unique, strings.Join(stores, ", "), a.DeadLettered, a.Lost, a.Duplicated)
}

// OK reports whether nothing was lost or duplicated.
func (a Audit) OK() bool { return a.Lost == 0 && a.Duplicated == 0 }

// store reads back what one sink holds: id → how many times.
type store interface {
	name() string
	reset(ctx context.Context) error
	// counts reads back the ids; want (the ids sent) lets a store that
	// cannot list everything look the expected ids up instead.
	counts(ctx context.Context, want map[string]int) (map[string]int, error)
	// idempotent stores hold an id once however often it was written.
	idempotent() bool
}

type auditor struct {
	stores []store
	dead   store
}

func newAuditor(ctx context.Context, cfg *pipeline.Config) (*auditor, error) {
	a := &auditor{}
	for _, s := range cfg.Sinks {
		st, err := storeFor(ctx, &s.Spec)
		if err != nil {
			return nil, err
		}
		a.stores = append(a.stores, st)
	}
	if cfg.DeadLetter != nil {
		st, err := storeFor(ctx, &cfg.DeadLetter.Spec)
		if err != nil {
			return nil, err
		}
		a.dead = st
	}
	return a, nil
}

func (a *auditor) reset(ctx context.Context) error {
	for _, s := range append(append([]store(nil), a.stores...), a.dead) {
		if s != nil {
			if err := s.reset(ctx); err != nil {
				return fmt.Errorf("reset %s before the run: %w", s.name(), err)
			}
		}
	}
	return nil
}

// expectedSettled is how many events the consumer settles: every event sent.
func (a *auditor) expectedSettled(total int64) int64 { return total }

// sent regenerates the run's events exactly: id → times sent, and the
// ids of malformed (poison) events.
func sent(o Options) (map[string]int, map[string]bool, int64) {
	counts, poison := map[string]int{}, map[string]bool{}
	var n int64
	for i, ph := range o.Profile.Phases {
		count := ph.Count
		if ph.Rate > 0 {
			count = int64(ph.Rate * ph.Duration.Seconds())
		}
		var c generate.Config
		c.SetDefaults()
		c.Duplicates, c.Poison, c.Seed = o.Duplicates, o.Poison, o.Seed+uint64(i)
		gen := generate.NewGenerator(c.Workload(), time.Now)
		var ev pipeline.Event
		for range count {
			// A fresh buffer each time: duplicates re-emit earlier
			// payloads, which point into the buffers they were made in.
			gen.Next(&ev, nil)
			counts[ev.ID]++
			if !gjson.ValidBytes(ev.Payload) {
				poison[ev.ID] = true
			}
			n++
		}
	}
	return counts, poison, n
}

func (a *auditor) run(ctx context.Context, o Options, _ int64) (Audit, error) {
	want, poison, n := sent(o)
	res := Audit{Sent: n, Unique: int64(len(want)), Poison: int64(len(poison))}
	for _, s := range a.stores {
		got, err := s.counts(ctx, want)
		if err != nil {
			return res, fmt.Errorf("read back %s: %w", s.name(), err)
		}
		sc := StoreCount{Sink: s.name(), Stored: int64(len(got))}
		for id, times := range want {
			if poison[id] {
				continue
			}
			switch stored := got[id]; {
			case stored == 0:
				sc.Lost++
			case s.idempotent() && stored > 1, !s.idempotent() && stored > times:
				sc.Duplicated++
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				sc.Duplicated++ // a document no sent event explains
			}
		}
		res.Stores = append(res.Stores, sc)
		res.Lost += sc.Lost
		res.Duplicated += sc.Duplicated
	}
	if a.dead != nil {
		got, err := a.dead.counts(ctx, nil)
		if err != nil {
			return res, fmt.Errorf("read back the dead letter: %w", err)
		}
		for id := range poison {
			if got[id] > 0 {
				res.DeadLettered++
			} else {
				res.Lost++
			}
		}
	} else if len(poison) > 0 {
		return res, errors.New("the workload has poison events but the consumer has no dead_letter to audit")
	}
	return res, nil
}

// configField reads a config struct's field by its yaml key.
func configField(cfg any, key string) string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == key {
			f := v.Field(i)
			if f.CanAddr() {
				if s, ok := f.Addr().Interface().(fmt.Stringer); ok {
					return s.String()
				}
			}
			if s, ok := f.Interface().(fmt.Stringer); ok {
				return s.String()
			}
			if f.Kind() == reflect.String {
				return f.String()
			}
		}
	}
	return ""
}

func storeFor(ctx context.Context, s *pipeline.Spec) (store, error) {
	switch s.Name {
	case "file":
		return &fileStore{path: configField(s.Config, "path")}, nil
	case "mongodb":
		uri, db, coll := configField(s.Config, "uri"), configField(s.Config, "database"), configField(s.Config, "collection")
		if strings.Contains(coll, "{") {
			return nil, fmt.Errorf("%s: the audit needs a fixed collection, not the template %q", s.Label(), coll)
		}
		client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
		if err != nil {
			return nil, err
		}
		return &mongoStore{label: s.Label(), coll: client.Database(db).Collection(coll)}, nil
	case "elasticsearch":
		urls := configStrings(s.Config, "urls")
		if len(urls) == 0 {
			return nil, fmt.Errorf("%s: no urls", s.Label())
		}
		return &esStore{label: s.Label(), url: strings.TrimRight(urls[0], "/"), user: configField(s.Config, "username"),
			pass: configField(s.Config, "password"), pattern: indexPattern(configField(s.Config, "index"))}, nil
	}
	return nil, fmt.Errorf("%s: the audit cannot read %s sinks back yet", s.Label(), s.Name)
}

// configStrings reads a []string config field by its yaml key.
func configStrings(cfg any, key string) []string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == key {
			if ss, ok := v.Field(i).Interface().([]string); ok {
				return ss
			}
		}
	}
	return nil
}

// indexPattern turns an index template into a search pattern:
// "bench-events-{2006.01.02}" → "bench-events-*".
var placeholder = regexp.MustCompile(`\{\{[^}]*\}\}|\{[^}]*\}`)

func indexPattern(tmpl string) string { return placeholder.ReplaceAllString(tmpl, "*") }

// esStore reads ids back with search requests. A real engine (OpenSearch,
// Elasticsearch) is refreshed and counted through the Count API; where
// _refresh or _count is missing (ZincSearch, whose indexing is
// asynchronous), counts polls until the search total stops moving.
type esStore struct {
	label, url, user, pass, pattern string
}

func (e *esStore) name() string     { return e.label }
func (e *esStore) idempotent() bool { return true }

func (e *esStore) do(ctx context.Context, method, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.user != "" {
		req.SetBasicAuth(e.user, e.pass)
	}
	return http.DefaultClient.Do(req)
}

func (e *esStore) reset(ctx context.Context) error {
	resp, err := e.do(ctx, http.MethodDelete, "/"+e.pattern, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// search runs one query and returns the total and the ids of the hits.
func (e *esStore) search(ctx context.Context, query string) (int, []string, error) {
	resp, err := e.do(ctx, http.MethodPost, "/"+e.pattern+"/_search", query)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("search %s: %s: %.200s", e.pattern, resp.Status, data)
	}
	r := gjson.ParseBytes(data)
	var ids []string
	for _, h := range r.Get("hits.hits").Array() {
		ids = append(ids, h.Get("_id").String())
	}
	return int(r.Get("hits.total.value").Int()), ids, nil
}

// counts looks the sent ids up with ids queries, a thousand at a time:
// listing an index page by page is capped (the result window) and, without
// a stable order, skips and repeats documents. Documents beyond those found
// are ones no sent event explains, and are reported as such.
func (e *esStore) counts(ctx context.Context, want map[string]int) (map[string]int, error) {
	last, exact, err := e.refreshCount(ctx)
	if err != nil {
		return nil, err
	}
	if !exact {
		if last, err = e.settledTotal(ctx); err != nil {
			return nil, err
		}
	}
	out := map[string]int{}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	const chunk = 1000
	for i := 0; i < len(ids); i += chunk {
		part := ids[i:min(i+chunk, len(ids))]
		values, _ := json.Marshal(part)
		_, found, err := e.search(ctx, fmt.Sprintf(`{"size":%d,"_source":false,"query":{"ids":{"values":%s}}}`, len(part), values))
		if err != nil {
			return nil, err
		}
		for _, id := range found {
			out[id]++
		}
	}
	found := 0
	for _, n := range out {
		found += n
	}
	for i := found; i < last; i++ {
		out[fmt.Sprintf("(document %d not sent)", i)]++
	}
	return out, nil
}

// refreshCount refreshes the indices and reads their document count through
// the Count API. exact is false when the server has no _refresh or _count
// (ZincSearch answers 404), and the caller must poll instead.
func (e *esStore) refreshCount(ctx context.Context) (total int, exact bool, err error) {
	resp, err := e.do(ctx, http.MethodPost, "/"+e.pattern+"/_refresh?allow_no_indices=true", "")
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, nil
	}
	resp, err = e.do(ctx, http.MethodGet, "/"+e.pattern+"/_count?allow_no_indices=true", "")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, nil
	}
	c := gjson.GetBytes(data, "count")
	if !c.Exists() {
		return 0, false, fmt.Errorf("count %s: no count in %.200s", e.pattern, data)
	}
	return int(c.Int()), true, nil
}

// settledTotal waits for asynchronous indexing: the search total must hold
// still for 5s (within 3 minutes).
func (e *esStore) settledTotal(ctx context.Context) (int, error) {
	last, stable := -1, time.Now()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		total, _, err := e.search(ctx, `{"size":0,"track_total_hits":true,"query":{"match_all":{}}}`)
		if err != nil {
			return 0, err
		}
		if total != last {
			last, stable = total, time.Now()
		} else if time.Since(stable) >= 5*time.Second {
			break
		}
	}
	return last, nil
}

type fileStore struct{ path string }

func (f *fileStore) name() string     { return "file " + f.path }
func (f *fileStore) idempotent() bool { return false }
func (f *fileStore) reset(context.Context) error {
	paths, err := f.paths()
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// paths is the file, or, for a path with a glob pattern (the chaos
// profile's consumers write one file each), every file it matches.
func (f *fileStore) paths() ([]string, error) {
	if !strings.ContainsAny(f.path, "*?[") {
		return []string{f.path}, nil
	}
	return filepath.Glob(f.path)
}

// payloadID finds the event id at the start of a dead letter's original
// payload: a malformed payload cannot be decoded, but its id is readable.
var payloadID = regexp.MustCompile(`"id":"([^"]+)"`)

func (f *fileStore) counts(context.Context, map[string]int) (map[string]int, error) {
	out := map[string]int{}
	paths, err := f.paths()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := countFile(p, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// countFile adds the ids of one JSON-lines file to out.
func countFile(path string, out map[string]int) error {
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		id := gjson.GetBytes(line, "id").String()
		if gjson.GetBytes(line, "failed_at").Exists() {
			// A dead letter: its id is the source's; the business id is
			// in the original payload.
			orig := gjson.GetBytes(line, "payload_text").String() + gjson.GetBytes(line, "payload").Raw
			if m := payloadID.FindStringSubmatch(orig); m != nil {
				id = m[1]
			}
		}
		out[id]++
	}
	return sc.Err()
}

type mongoStore struct {
	label string
	coll  *mongo.Collection
}

func (m *mongoStore) name() string     { return m.label }
func (m *mongoStore) idempotent() bool { return true }
func (m *mongoStore) reset(ctx context.Context) error {
	return m.coll.Drop(ctx)
}

func (m *mongoStore) counts(ctx context.Context, _ map[string]int) (map[string]int, error) {
	cur, err := m.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	out := map[string]int{}
	for cur.Next(ctx) {
		var doc struct {
			ID any `bson:"_id"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		out[fmt.Sprint(doc.ID)]++
	}
	return out, cur.Err()
}
