package poller_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sluicehq/sluice/internal/poller"
	"github.com/sluicehq/sluice/internal/testenv"
)

// countingStore is a memStore that counts its Close calls.
type countingStore struct {
	memStore
	closes atomic.Int32
}

func (c *countingStore) Close(context.Context) error {
	c.closes.Add(1)
	return nil
}

// clashingRegistry already holds a series the poller registers, so New
// fails after its options (and their store) were handed over.
func clashingRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_poller_requests_total", Help: "taken"}))
	return reg
}

// TestNewClosesTheStoreWhenItFails: New owns the store it is given, so a
// New that fails closes it — a MongoDB store's client is disconnected
// rather than left connected on every failed build (a `sluice run
// --watch` reload) — and a New that succeeds leaves it to Close.
func TestNewClosesTheStoreWhenItFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		// store returns the store New is given and a check, run once New
		// has answered, of whether that store was closed exactly once.
		store func(t *testing.T) (poller.Store, func() (closed bool, detail string))
	}{
		{"counting store", func(t *testing.T) (poller.Store, func() (bool, string)) {
			s := &countingStore{memStore: memStore{m: map[string]poller.Cursor{}}}
			return s, func() (bool, string) {
				n := s.closes.Load()
				if n > 1 {
					t.Errorf("store closed %d times, want at most once", n)
				}
				return n == 1, fmt.Sprintf("%d Close calls", n)
			}
		}},
		{"mongodb store", func(t *testing.T) (poller.Store, func() (bool, string)) {
			uri := testenv.MongoURI(t)
			db := fmt.Sprintf("poller_close_test_%d", time.Now().UnixNano())
			ms, err := poller.OpenMongoStore(uri, db, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = ms.Close(context.Background()) // a second Disconnect only errors
				dropDatabase(t, uri, db)
			})
			return ms, func() (bool, string) {
				// A disconnected client refuses before any I/O.
				_, _, err := ms.Load(t.Context(), "k", "obj")
				return errors.Is(err, mongo.ErrClientDisconnected), fmt.Sprintf("Load after New: %v", err)
			}
		}},
	} {
		t.Run(tc.name+"/New fails", func(t *testing.T) {
			store, closed := tc.store(t)
			s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, StateKey: "k", Store: store,
				Client: &pages{}, Metrics: clashingRegistry(t)})
			if err == nil {
				_ = s.Close(t.Context())
				t.Fatal("New succeeded on a registry that already holds sluice_poller_requests_total")
			}
			if ok, detail := closed(); !ok {
				t.Fatalf("New failed (%v) and left its store open: %s", err, detail)
			}
		})
		t.Run(tc.name+"/New succeeds", func(t *testing.T) {
			store, closed := tc.store(t)
			s, err := poller.New(poller.Options{Vendor: "v", Objects: []string{"obj"}, StateKey: "k", Store: store,
				Client: &pages{}, Metrics: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			if ok, detail := closed(); ok {
				t.Fatalf("New succeeded and closed the store the source still needs: %s", detail)
			}
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ok, detail := closed(); !ok {
				t.Fatalf("Close left the store open: %s", detail)
			}
		})
	}
}

// dropDatabase removes a test's database from the shared server.
func dropDatabase(t *testing.T, uri, db string) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Error(err)
		return
	}
	defer client.Disconnect(context.Background())
	if err := client.Database(db).Drop(context.Background()); err != nil {
		t.Errorf("drop database %s: %v", db, err)
	}
}
