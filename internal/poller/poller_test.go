package poller_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// pages is a scripted client: each call returns the next page or error.
type pages struct {
	mu    sync.Mutex
	steps []func(q poller.Query) (poller.Page, error)
	qs    []poller.Query
}

func (p *pages) Fetch(_ context.Context, q poller.Query) (poller.Page, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.qs = append(p.qs, q)
	if len(p.steps) == 0 {
		return poller.Page{}, nil
	}
	f := p.steps[0]
	p.steps = p.steps[1:]
	return f(q)
}

func page(next string, stamps ...int) func(poller.Query) (poller.Page, error) {
	return func(poller.Query) (poller.Page, error) {
		var p poller.Page
		for _, s := range stamps {
			p.Records = append(p.Records, poller.Record{ID: "r" + strconv.Itoa(s), Stamp: t0.Add(time.Duration(s) * time.Second), Data: []byte(`{}`)})
		}
		p.Next = next
		p.ServerTime = t0.Add(time.Hour)
		return p, nil
	}
}

// memStore is a Store in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]poller.Cursor
}

func (m *memStore) Load(_ context.Context, c, o string) (poller.Cursor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[c+"/"+o]
	return v, ok, nil
}

func (m *memStore) Save(_ context.Context, c, o string, v poller.Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[c+"/"+o] = v
	return nil
}

func (m *memStore) Close(context.Context) error { return nil }

func (m *memStore) get(o string) (poller.Cursor, bool) {
	c, ok, _ := m.Load(context.Background(), "k", o)
	return c, ok
}

func newSource(cl poller.Client, store poller.Store, sorted bool) *poller.Source {
	s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, Sorted: sorted, Interval: time.Hour, CheckpointInterval: time.Hour,
		StateKey: "k", Store: store, Client: cl, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Metrics: prometheus.NewRegistry()})
	if err != nil {
		panic(err)
	}
	return s
}

type read struct {
	ids []string
	ack pipeline.AckFunc
}

func readN(t *testing.T, s *poller.Source, n int) []read {
	t.Helper()
	var out []read
	for range n {
		ctx, cancel := context.WithTimeout(t.Context(), testwait.Bound())
		evs, ack, err := s.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read %d: %v", len(out), err)
		}
		r := read{ack: ack}
		for _, e := range evs {
			id, ok := e.Meta.Get(poller.MetaRecordID)
			if !ok {
				t.Fatalf("event %s has no %s meta: %v", e.ID, poller.MetaRecordID, e.Meta)
			}
			r.ids = append(r.ids, id)
		}
		out = append(out, r)
	}
	return out
}

func TestCheckpointFollowsTheContiguousAckedPrefix(t *testing.T) {
	cur := func(s int, id string) poller.Cursor {
		return poller.Cursor{Time: t0.Add(time.Duration(s) * time.Second), ID: id}
	}
	for _, tc := range []struct {
		name   string
		sorted bool
		acks   []int // batch index to ack in this order; negative: ack -(i+1) with an error
		want   *poller.Cursor
	}{
		{"sorted, in order", true, []int{0, 1, 2}, &[]poller.Cursor{cur(7, "r7")}[0]},
		{"sorted, out of order waits for the gap", true, []int{2, 1}, nil},
		{"sorted, prefix only", true, []int{0, 2}, &[]poller.Cursor{cur(3, "r3")}[0]},
		{"sorted, never past a failed batch", true, []int{0, -2, 2}, &[]poller.Cursor{cur(3, "r3")}[0]},
		{"sorted, nothing acked", true, nil, nil},
		{"sorted, every ack failed", true, []int{-1, -2, -3}, nil},
		{"unsorted, moves only when the whole query is acked", false, []int{0, 1}, nil},
		{"unsorted, whole query acked", false, []int{2, 0, 1}, &[]poller.Cursor{{Time: t0.Add(time.Hour)}}[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &pages{steps: []func(poller.Query) (poller.Page, error){page("p2", 1, 2, 3), page("p3", 3, 4, 5), page("", 6, 7)}}
			store := &memStore{m: map[string]poller.Cursor{}}
			s := newSource(cl, store, tc.sorted)
			rs := readN(t, s, 3)
			// r3 comes again on page two: it is dropped as already handed out.
			if fmt.Sprint(rs[1].ids) != "[r4 r5]" {
				t.Fatalf("page two gave %v", rs[1].ids)
			}
			for _, a := range tc.acks {
				if a < 0 {
					rs[-a-1].ack(errors.New("pipeline stopped"))
				} else {
					rs[a].ack(nil)
				}
			}
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			got, ok := store.get("obj")
			switch {
			case tc.want == nil && ok:
				t.Fatalf("cursor saved %+v, want none", got)
			case tc.want != nil && (!ok || !got.Time.Equal(tc.want.Time) || got.ID != tc.want.ID):
				t.Fatalf("cursor %+v (saved %v), want %+v", got, ok, *tc.want)
			}
		})
	}
}

func TestRestartQueriesFromTheCursorLessOverlap(t *testing.T) {
	store := &memStore{m: map[string]poller.Cursor{"k/obj": {Time: t0.Add(10 * time.Second), ID: "r10"}}}
	cl := &pages{steps: []func(poller.Query) (poller.Page, error){page("", 10, 11)}}
	s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, Sorted: true, Interval: time.Hour, Overlap: 3 * time.Second,
		StateKey: "k", Store: store, Client: cl})
	if err != nil {
		t.Fatal(err)
	}
	rs := readN(t, s, 1)
	if fmt.Sprint(rs[0].ids) != "[r11]" {
		t.Fatalf("after a restart read %v; the cursor's own record must not come again", rs[0].ids)
	}
	if q := cl.qs[0]; !q.Since.Equal(t0.Add(7*time.Second)) || q.Token != "" {
		t.Fatalf("first query %+v, want since cursor-3s", q)
	}
	_ = s.Close(t.Context())
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		wait      time.Duration // the pause asked for before the retry
	}{
		{"transient is retried", errors.New("connection reset"), false, time.Millisecond},
		{"retry-after waits", &poller.RetryAfterError{Wait: 300 * time.Millisecond, Err: errors.New("429")}, false, 300 * time.Millisecond},
		{"permanent stops", pipeline.Permanent(errors.New("400 bad query")), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fail := func(poller.Query) (poller.Page, error) { return poller.Page{}, tc.err }
			ok := func(q poller.Query) (poller.Page, error) { return page("", 1)(q) }
			reg := prometheus.NewRegistry()
			clock := &fakeClock{now: t0}
			s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, Sorted: true, Interval: time.Hour, StateKey: "k",
				Store: &memStore{m: map[string]poller.Cursor{}}, Client: &pages{steps: []func(poller.Query) (poller.Page, error){fail, ok}},
				MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Metrics: reg, Now: clock.Now, Sleep: clock.Sleep})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(t.Context())
			ctx, cancel := context.WithTimeout(t.Context(), testwait.Bound())
			defer cancel()
			evs, _, err := s.Read(ctx)
			if tc.permanent {
				if !pipeline.IsPermanent(err) || s.Ready() == nil {
					t.Fatalf("err %v ready %v, want permanent and not ready", err, s.Ready())
				}
				return
			}
			if err != nil || len(evs) != 1 || s.Ready() != nil {
				t.Fatalf("events %d err %v ready %v", len(evs), err, s.Ready())
			}
			if got := clock.slept(); fmt.Sprint(got) != fmt.Sprint([]time.Duration{tc.wait}) {
				t.Fatalf("paused %v before the retry, want [%s]", got, tc.wait)
			}
			wantResult := "error"
			if tc.name == "retry-after waits" {
				wantResult = "rate_limited"
			}
			if got := pipelinetest.MetricByLabel(t, reg, "sluice_poller_requests_total", "result"); got[wantResult] != 1 || got["ok"] != 1 {
				t.Fatalf("sluice_poller_requests_total %v, want one %s and one ok", got, wantResult)
			}
		})
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "cursors.json")
	fs, err := poller.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fs.Load(t.Context(), "crm", "Contact"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	want := map[string]poller.Cursor{"Contact": {Time: t0.Add(123456789 * time.Nanosecond), ID: "003A"}, "Lead": {Time: t0, ID: "00QB"}}
	for o, c := range want {
		if err := fs.Save(t.Context(), "crm", o, c); err != nil {
			t.Fatal(err)
		}
	}
	fs2, _ := poller.NewFileStore(path)
	for o, c := range want {
		got, ok, err := fs2.Load(t.Context(), "crm", o)
		if err != nil || !ok || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Fatalf("%s: %+v %v %v, want %+v", o, got, ok, err, c)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestMongoStore(t *testing.T) {
	uri := testenv.MongoURI(t)
	db := fmt.Sprintf("poller_test_%d", time.Now().UnixNano())
	ms, err := poller.OpenMongoStore(uri, db, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close(context.Background())
	ctx := t.Context()
	if _, ok, err := ms.Load(ctx, "crm", "Contact"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	for _, c := range []poller.Cursor{{Time: t0, ID: "003A"}, {Time: t0.Add(1500 * time.Microsecond), ID: "003B"}} {
		if err := ms.Save(ctx, "crm", "Contact", c); err != nil {
			t.Fatal(err)
		}
		got, ok, err := ms.Load(ctx, "crm", "Contact")
		if err != nil || !ok || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Fatalf("%+v %v %v, want %+v", got, ok, err, c)
		}
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	defer client.Database(db).Drop(context.Background())
	n, err := client.Database(db).Collection("poller_cursors").CountDocuments(ctx, bson.D{{Key: "_id", Value: "crm/Contact"}})
	if err != nil || n != 1 {
		t.Fatalf("documents keyed crm/Contact: %d %v", n, err)
	}
}
