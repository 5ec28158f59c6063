package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// SinkUnderTest is one fresh sink and what the suite may do with it. Every
// call of the factory must return a sink writing to a place of its own (a
// new file, index, collection, topic or stream), already started if it is a
// pipeline.Starter. The suite closes Sink itself.
type SinkUnderTest struct {
	Sink pipeline.Sink
	Kind Kind
	// ReadBack returns every record the sink's place holds. For a Log, the
	// records of one key in the order they were written. Optional: without
	// it the cases that check what was stored are skipped. The suite polls
	// it until what it expects is there, so an eventually consistent store
	// may return a partial view.
	ReadBack func(ctx context.Context) ([]Record, error)
	// Poison returns an event with the given id and key that this sink
	// fails permanently on its own, while the other events of the batch
	// are stored (too large for the store, not encodable). Optional.
	Poison func(id, key string) *pipeline.Event
	// Unreachable returns a sink of the same kind whose server cannot be
	// reached: its writes must fail retryably. Optional. The suite closes it.
	Unreachable func(t *testing.T) pipeline.Sink
}

// SinkFactory makes a SinkUnderTest for one case of the table.
type SinkFactory func(t *testing.T) *SinkUnderTest

// sinkCase is one row of the sink table.
type sinkCase struct {
	name string
	run  func(t *testing.T, s *SinkUnderTest)
}

var sinkCases = []sinkCase{
	{"IdempotentRewrite", sinkIdempotentRewrite},
	{"PartialFailureMapsBack", sinkPartialFailure},
	{"PermanentOnlyBatch", sinkPermanentOnly},
	{"RetryableWhenUnreachable", sinkRetryable},
	{"OrderPerKey", sinkOrderPerKey},
	{"CloseAfterFailedWrite", sinkCloseAfterFailedWrite},
	{"CanceledContext", sinkCanceledContext},
	{"ConcurrentKeys", sinkConcurrentKeys},
}

// TestSink runs the sink table: idempotent rewrite of the same ids, a
// partial failure mapped back to exactly the failing events, retryable vs
// permanent classification, order per key (last write of an id wins),
// Close after a failed Write, context cancellation, and concurrent writes
// of different keys (run the test with -race).
func TestSink(t *testing.T, factory SinkFactory) {
	for _, c := range sinkCases {
		t.Run(c.name, func(t *testing.T) {
			s := factory(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = s.Sink.Close(context.Background())
				}
			})
			if c.name == "CloseAfterFailedWrite" {
				closed = true // the case closes the sink itself
			}
			c.run(t, s)
		})
	}
}

func batchOf(prefix, key string, n, seq int) []*pipeline.Event {
	b := make([]*pipeline.Event, n)
	for i := range b {
		b[i] = Event(fmt.Sprintf("%s-%03d", prefix, i), key, seq)
	}
	return b
}

func write(t *testing.T, s pipeline.Sink, batch []*pipeline.Event) {
	t.Helper()
	if err := s.Write(testContext(t), batch); err != nil {
		t.Fatalf("Write of %d events: %v", len(batch), err)
	}
}

func needReadBack(t *testing.T, s *SinkUnderTest) {
	t.Helper()
	if s.ReadBack == nil {
		t.Skip("skipped: the factory offers no ReadBack, so what was stored cannot be checked")
	}
}

// byID groups read-back records by id, keeping their order.
func byID(recs []Record) map[string][]Record {
	m := map[string][]Record{}
	for _, r := range recs {
		m[r.ID] = append(m[r.ID], r)
	}
	return m
}

func seq(r Record) int64 { return gjson.GetBytes(r.Body, "seq").Int() }

// waitStored polls ReadBack until every id of want is there with the seq
// want gives it (for a Log: its last record), and returns the records.
func waitStored(t *testing.T, s *SinkUnderTest, want map[string]int) map[string][]Record {
	t.Helper()
	ctx := testContext(t)
	var got map[string][]Record
	var lastErr error
	testwait.For(t, "read-back to show every written id with its last write", func() bool {
		recs, err := s.ReadBack(ctx)
		if lastErr = err; err != nil {
			return false
		}
		got = byID(recs)
		for id, sq := range want {
			rs := got[id]
			if len(rs) == 0 || seq(rs[len(rs)-1]) != int64(sq) {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("read-back error %v; have %d ids, want %d", lastErr, len(got), len(want))
	})
	return got
}

func sinkIdempotentRewrite(t *testing.T, s *SinkUnderTest) {
	needReadBack(t, s)
	batch := batchOf(uniquePrefix(t), "k", 10, 1)
	write(t, s.Sink, batch)
	write(t, s.Sink, batch)
	want := map[string]int{}
	for _, ev := range batch {
		want[ev.ID] = 1
	}
	got := waitStored(t, s, want)
	for id, rs := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("store holds id %q that was never written", id)
		}
		if s.Kind == Store && len(rs) != 1 {
			t.Errorf("store kind %s holds id %s %d times after a rewrite, want once", s.Kind, id, len(rs))
		}
		for _, r := range rs[1:] {
			if string(r.Body) != string(rs[0].Body) {
				t.Errorf("id %s: a rewrite stored a different body: %s vs %s", id, rs[0].Body, r.Body)
			}
		}
	}
}

// failedIndexes checks err is a *pipeline.BatchError and returns the
// indexes it names, sorted, and whether every failure is permanent.
func failedIndexes(t *testing.T, err error) ([]int, bool) {
	t.Helper()
	var be *pipeline.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write returned %T %v, want a *pipeline.BatchError naming the failed events", err, err)
	}
	var idx []int
	permanent := true
	for _, f := range be.Failures {
		idx = append(idx, f.Index)
		permanent = permanent && pipeline.IsPermanent(f.Err)
	}
	sort.Ints(idx)
	return idx, permanent
}

func needPoison(t *testing.T, s *SinkUnderTest) {
	t.Helper()
	if s.Poison == nil {
		t.Skip("skipped: the factory offers no Poison event, so a per-event failure cannot be provoked")
	}
}

func sinkPartialFailure(t *testing.T, s *SinkUnderTest) {
	needPoison(t, s)
	p := uniquePrefix(t)
	batch := batchOf(p, "k", 6, 1)
	batch[1] = s.Poison(p+"-poison-1", "k")
	batch[4] = s.Poison(p+"-poison-4", "k")
	err := s.Sink.Write(testContext(t), batch)
	idx, permanent := failedIndexes(t, err)
	if !slices.Equal(idx, []int{1, 4}) {
		t.Fatalf("BatchError names events %v, want exactly [1 4] (the poison ones): %v", idx, err)
	}
	if !permanent {
		t.Errorf("poison events must fail with pipeline.Permanent: %v", err)
	}
	if s.ReadBack == nil {
		return
	}
	want := map[string]int{}
	for i, ev := range batch {
		if i != 1 && i != 4 {
			want[ev.ID] = 1
		}
	}
	got := waitStored(t, s, want)
	for _, id := range []string{batch[1].ID, batch[4].ID} {
		if len(got[id]) > 0 {
			t.Errorf("poison event %s was stored", id)
		}
	}
}

// sinkPermanentOnly: a batch of nothing but poison fails every event
// permanently, whether as one error or as a BatchError naming each one.
func sinkPermanentOnly(t *testing.T, s *SinkUnderTest) {
	needPoison(t, s)
	p := uniquePrefix(t)
	batch := []*pipeline.Event{s.Poison(p+"-a", "k"), s.Poison(p+"-b", "k")}
	err := s.Sink.Write(testContext(t), batch)
	if err == nil {
		t.Fatal("Write of poison events returned nil")
	}
	var be *pipeline.BatchError
	if !errors.As(err, &be) {
		if !pipeline.IsPermanent(err) {
			t.Fatalf("Write of poison only returned a retryable error: %v", err)
		}
		return
	}
	idx, permanent := failedIndexes(t, err)
	if !slices.Equal(idx, []int{0, 1}) || !permanent {
		t.Fatalf("BatchError names %v (permanent %v), want [0 1] permanent: %v", idx, permanent, err)
	}
}

func needUnreachable(t *testing.T, s *SinkUnderTest) pipeline.Sink {
	t.Helper()
	if s.Unreachable == nil {
		t.Skip("skipped: the factory offers no Unreachable sink, so an outage cannot be provoked")
	}
	u := s.Unreachable(t)
	t.Cleanup(func() { _ = u.Close(context.Background()) })
	return u
}

// retryable reports whether err fails the call or every event retryably.
func retryable(err error) bool {
	var be *pipeline.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failures {
			if pipeline.IsPermanent(f.Err) {
				return false
			}
		}
		return len(be.Failures) > 0
	}
	return err != nil && !pipeline.IsPermanent(err)
}

func sinkRetryable(t *testing.T, s *SinkUnderTest) {
	u := needUnreachable(t, s)
	err := u.Write(testContext(t), batchOf(uniquePrefix(t), "k", 3, 1))
	if !retryable(err) {
		t.Fatalf("Write to an unreachable server returned %v, want a retryable error (an outage is not the events' fault)", err)
	}
}

func sinkOrderPerKey(t *testing.T, s *SinkUnderTest) {
	needReadBack(t, s)
	p := uniquePrefix(t)
	x := p + "-x"
	// Five other events of the same key in one batch, then the same id
	// written three times in three calls: the last write wins.
	first := append([]*pipeline.Event{Event(x, "k", 1)}, batchOf(p+"-o", "k", 5, 1)...)
	write(t, s.Sink, first)
	write(t, s.Sink, []*pipeline.Event{Event(x, "k", 2)})
	write(t, s.Sink, []*pipeline.Event{Event(x, "k", 3)})
	want := map[string]int{x: 3}
	for _, ev := range first[1:] {
		want[ev.ID] = 1
	}
	got := waitStored(t, s, want)
	if s.Kind == Log {
		var seqs []int64
		for _, r := range got[x] {
			seqs = append(seqs, seq(r))
		}
		if !slices.Equal(seqs, []int64{1, 2, 3}) {
			t.Errorf("log holds id %s's writes as seq %v, want [1 2 3]", x, seqs)
		}
		recs, err := s.ReadBack(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, r := range recs {
			if strings.HasPrefix(r.ID, p+"-o-") {
				order = append(order, r.ID)
			}
		}
		if !slices.IsSorted(order) || len(order) != 5 {
			t.Errorf("log holds one batch's events of one key as %v, want the 5 in batch order", order)
		}
	}
}

func sinkCloseAfterFailedWrite(t *testing.T, s *SinkUnderTest) {
	switch {
	case s.Poison != nil:
		p := uniquePrefix(t)
		if err := s.Sink.Write(testContext(t), []*pipeline.Event{s.Poison(p, "k")}); err == nil {
			t.Fatal("Write of a poison event returned nil")
		}
		if err := s.Sink.Close(testContext(t)); err != nil {
			t.Fatalf("Close after a failed Write: %v", err)
		}
	case s.Unreachable != nil:
		_ = s.Sink.Close(testContext(t))
		u := s.Unreachable(t)
		if err := u.Write(testContext(t), batchOf(uniquePrefix(t), "k", 2, 1)); err == nil {
			t.Fatal("Write to an unreachable server returned nil")
		}
		// Close must return (the hang bound catches it if not); its error
		// is allowed, the server being gone.
		if err := u.Close(testContext(t)); err != nil {
			t.Logf("Close of the unreachable sink: %v", err)
		}
	default:
		_ = s.Sink.Close(testContext(t))
		t.Skip("skipped: the factory offers neither Poison nor Unreachable, so no Write can be made to fail")
	}
}

func sinkCanceledContext(t *testing.T, s *SinkUnderTest) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := batchOf(uniquePrefix(t), "k", 3, 1)
	err := s.Sink.Write(ctx, batch)
	switch {
	case err != nil && pipeline.IsPermanent(err):
		t.Fatalf("Write with a canceled context failed permanently: %v", err)
	case err != nil:
		var be *pipeline.BatchError
		if errors.As(err, &be) && !retryable(err) {
			t.Fatalf("Write with a canceled context failed events permanently: %v", err)
		}
	case s.ReadBack != nil:
		// nil means durable, canceled or not.
		want := map[string]int{}
		for _, ev := range batch {
			want[ev.ID] = 1
		}
		waitStored(t, s, want)
	}
	if s.Unreachable != nil {
		u := s.Unreachable(t)
		defer u.Close(context.Background())
		if err := u.Write(ctx, batch); !retryable(err) {
			t.Fatalf("Write to an unreachable server with a canceled context returned %v, want a retryable error", err)
		}
	}
}

func sinkConcurrentKeys(t *testing.T, s *SinkUnderTest) {
	p := uniquePrefix(t)
	const writers, batches, size = 4, 5, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	want := map[string]int{}
	var all [][]*pipeline.Event
	for w := range writers {
		for b := range batches {
			batch := batchOf(fmt.Sprintf("%s-w%d-b%d", p, w, b), fmt.Sprintf("key-%d", w), size, 1)
			for _, ev := range batch {
				want[ev.ID] = 1
			}
			all = append(all, batch)
		}
	}
	ctx := testContext(t)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, batch := range all[w*batches : (w+1)*batches] {
				if err := s.Sink.Write(ctx, batch); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Write: %v", err)
	}
	if t.Failed() || s.ReadBack == nil {
		return
	}
	got := waitStored(t, s, want)
	if s.Kind == Store {
		for id := range want {
			if n := len(got[id]); n != 1 {
				t.Errorf("id %s stored %d times", id, n)
			}
		}
	}
}
