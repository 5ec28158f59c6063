package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// fastRetry keeps retry waits short so the tests spend their time on
// behaviour, not sleeping.
const fastRetry = "retry: {initial_interval: 1ms, max_interval: 5ms}\n"

func events(prefix string, n int, key func(i int) string) []*pipeline.Event {
	out := make([]*pipeline.Event, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		out[i] = &pipeline.Event{
			ID: id, Key: []byte(key(i)), Time: time.Now(),
			Payload: []byte(fmt.Sprintf(`{"id":%q,"seq":%d}`, id, i)),
		}
		out[i].Body = out[i].Payload
	}
	return out
}

func oneKey(int) string { return "k" }

type harness struct {
	t      *testing.T
	src    *pipelinetest.Source
	sinks  []*pipelinetest.Sink
	dead   *pipelinetest.Sink
	p      *pipeline.Pipeline
	done   chan error
	ctx    context.Context
	cancel context.CancelFunc
	logs   *testwait.Buffer // everything the pipeline logged, at debug level
}

// start builds (but does not run) the YAML pipeline around src, n memory sinks (index 0..n-1)
// and, when withDead, a dead-letter memory sink (index n), and runs it.
func start(t *testing.T, yaml string, src *pipelinetest.Source, n int, withDead bool, extra func(*pipeline.Registry)) *harness {
	t.Helper()
	h := &harness{t: t, src: src, done: make(chan error, 1), logs: &testwait.Buffer{}}
	var sinks []pipeline.Sink
	for range n {
		s := &pipelinetest.Sink{}
		h.sinks = append(h.sinks, s)
		sinks = append(sinks, s)
	}
	h.dead = &pipelinetest.Sink{}
	sinks = append(sinks, h.dead)
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, sinks...)
	if extra != nil {
		extra(reg)
	}
	doc := "name: test\nsource: {mem: {}}\nsinks:\n"
	for i := range n {
		doc += fmt.Sprintf("  - mem: {index: %d}\n", i)
	}
	if withDead {
		doc += fmt.Sprintf("dead_letter: {mem: {index: %d}}\n", n)
	}
	doc += yaml
	cfg, err := pipeline.Load("test.yaml", []byte(doc), reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("load:\n%s\n%v", doc, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx, h.cancel = ctx, cancel
	h.p, err = pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// run starts the pipeline; set sink hooks before calling it.
func (h *harness) run() {
	t := h.t
	go func() { h.done <- h.p.Run(h.ctx) }()
	cancel := h.cancel
	t.Cleanup(func() {
		cancel()
		testwait.Recv(t, h.done, "return from Run after cancel", nil)
	})
}

func (h *harness) wait() error {
	h.t.Helper()
	err := testwait.Recv(h.t, h.done, "return from Run", nil)
	h.done <- err // let Cleanup see it too
	return err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.ForEvery(t, 2*time.Millisecond, what, cond, nil)
}

func TestAckOnlyAfterEverySinkWrote(t *testing.T) {
	release := make(chan struct{})
	src := pipelinetest.NewSource(events("e", 10, oneKey))
	h := start(t, "batch: {max_events: 10, max_wait: 5ms}\n", src, 2, false, nil)
	h.sinks[1].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		<-release
		return nil
	}
	h.run()
	waitFor(t, "sink 0 to write", func() bool { return len(h.sinks[0].Writes()) == 10 })
	waitFor(t, "sink 1 to be called", func() bool { return h.sinks[1].Calls() == 1 })
	if a := src.Acks()[0]; a.Acked {
		t.Fatalf("batch acked while sink 1 was still writing: %+v", a)
	}
	close(release)
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	a := src.Acks()[0]
	if !a.Acked || a.Err != nil || a.Calls != 1 {
		t.Fatalf("ack = %+v, want one ack without error", a)
	}
	for i, s := range h.sinks {
		if got := len(s.IDs()); got != 10 {
			t.Errorf("sink %d stored %d events, want 10", i, got)
		}
	}
}

func TestFailingSinkIsRetriedAndNothingAckedMeanwhile(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 20, oneKey))
	var mu sync.Mutex
	var ackedDuringFailure []bool
	h := start(t, "batch: {max_events: 20, max_wait: 5ms}\n"+fastRetry, src, 1, false, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, call int, _ []*pipeline.Event) error {
		if call <= 4 {
			mu.Lock()
			ackedDuringFailure = append(ackedDuringFailure, src.Acks()[0].Acked)
			mu.Unlock()
			return errors.New("connection refused")
		}
		return nil
	}
	h.run()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	if h.sinks[0].Calls() != 5 {
		t.Fatalf("sink called %d times, want 4 failures and 1 success", h.sinks[0].Calls())
	}
	for i, acked := range ackedDuringFailure {
		if acked {
			t.Fatalf("batch was acked during failed attempt %d", i+1)
		}
	}
	if a := src.Acks()[0]; !a.Acked || a.Err != nil {
		t.Fatalf("ack = %+v, want acked without error", a)
	}
	if got := len(h.sinks[0].IDs()); got != 20 {
		t.Fatalf("stored %d events, want 20", got)
	}
}

func TestPermanentEventErrorGoesToDeadLetterAndTheRestIsWritten(t *testing.T) {
	evs := events("e", 10, func(i int) string { return "k" + strconv.Itoa(i) })
	evs[3].Payload = []byte("not json \xff")
	evs[3].Meta = pipeline.Meta{{Key: "kafka.topic", Value: "crm"}, {Key: "kafka.offset", Value: "3"}, {Key: "kafka.header.trace", Value: "t3"}}
	src := pipelinetest.NewSource(evs)
	h := start(t, "batch: {max_events: 10, max_wait: 5ms}\ndelivery: {lanes: 1, max_in_flight: 1}\n"+fastRetry, src, 1, true, nil)
	var deadEvents []*pipeline.Event
	h.dead.WriteFunc = func(_ context.Context, _ int, batch []*pipeline.Event) error {
		deadEvents = append(deadEvents, batch...)
		return nil
	}
	h.sinks[0].WriteFunc = func(ctx context.Context, call int, batch []*pipeline.Event) error {
		be := pipeline.NewBatchError()
		for i, ev := range batch {
			switch {
			case ev.ID == "e-3":
				be.Fail(i, pipeline.Permanent(errors.New("mapper_parsing_exception: field [seq] of type long")))
			case ev.ID == "e-5" && call == 1:
				be.Fail(i, errors.New("es_rejected_execution_exception (429)"))
			}
		}
		return be.Err()
	}
	h.run()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	ids := h.sinks[0].IDs()
	if len(ids) != 9 || ids["e-3"] {
		t.Fatalf("sink stored %v, want the 9 events other than e-3", ids)
	}
	dead := h.dead.Writes()
	if len(dead) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dead))
	}
	var dl pipeline.DeadLetter
	if err := json.Unmarshal([]byte(dead[0].Body), &dl); err != nil {
		t.Fatal(err)
	}
	if dl.ID != "e-3" || dl.Component != "sinks[0].mem" || !strings.Contains(dl.Reason, "mapper_parsing_exception") || dl.Pipeline != "test" {
		t.Fatalf("dead letter = %+v", dl)
	}
	orig, err := dl.Original()
	if err != nil || string(orig) != "not json \xff" {
		t.Fatalf("original payload = %q, %v; want it byte for byte", orig, err)
	}
	// The dead-letter event is the original record (for sinks with
	// headers) with the failure in sluice.dead_letter.* facts.
	de := deadEvents[0]
	if !pipeline.IsDeadLetter(de) || string(de.Payload) != "not json \xff" || string(de.Key) != "k3" || de.ID != "e-3" {
		t.Fatalf("dead-letter event id %q key %q payload %q", de.ID, de.Key, de.Payload)
	}
	for key, want := range map[string]string{
		"kafka.header.trace":           "t3",
		"sluice.dead_letter.component": "sinks[0].mem",
		"sluice.dead_letter.attempts":  "1",
		"sluice.dead_letter.pipeline":  "test",
		"sluice.dead_letter.source":    "kafka.offset=3&kafka.topic=crm",
	} {
		if got, _ := de.Meta.Get(key); got != want {
			t.Errorf("dead-letter meta %s = %q, want %q", key, got, want)
		}
	}
	if r, _ := de.Meta.Get(pipeline.MetaDeadLetterReason); !strings.Contains(r, "mapper_parsing_exception") {
		t.Errorf("dead-letter reason %q", r)
	}
	if dl.Source != "kafka.offset=3&kafka.topic=crm" || dl.Meta["kafka.header.trace"] != "t3" {
		t.Errorf("dead-letter record source %q meta %v", dl.Source, dl.Meta)
	}
	if a := src.Acks()[0]; !a.Acked || a.Err != nil {
		t.Fatalf("ack = %+v", a)
	}
	st := h.p.Stats()
	if st.Written != 9 || st.DeadLettered != 1 || st.Read != 10 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPermanentErrorWithoutDeadLetterStopsUnacked(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 5, oneKey))
	src.BlockWhenDone = true
	h := start(t, "batch: {max_events: 5, max_wait: 5ms}\n", src, 1, false, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, batch []*pipeline.Event) error {
		return pipeline.NewBatchError().Fail(2, pipeline.Permanent(errors.New("document too large"))).Err()
	}
	h.run()
	err := h.wait()
	if !errors.Is(err, pipeline.ErrNoDeadLetter) || !strings.Contains(err.Error(), "document too large") {
		t.Fatalf("Run error = %v, want ErrNoDeadLetter naming the reason", err)
	}
	a := src.Acks()[0]
	if !a.Acked || a.Err == nil {
		t.Fatalf("ack = %+v, want an error ack so the source redelivers", a)
	}
}

func TestRetriesExhaustedDeadLetter(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 3, oneKey))
	h := start(t, "batch: {max_events: 3, max_wait: 5ms}\nretry: {initial_interval: 1ms, max_interval: 2ms, max_attempts: 3}\n", src, 1, true, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, batch []*pipeline.Event) error {
		for i, ev := range batch {
			if ev.ID == "e-1" {
				return pipeline.NewBatchError().Fail(i, errors.New("timeout")).Err()
			}
		}
		return nil
	}
	h.run()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	dead := h.dead.Writes()
	if len(dead) != 1 || dead[0].ID != "e-1" || !strings.Contains(dead[0].Body, "giving up after 3 attempts") {
		t.Fatalf("dead letters = %+v", dead)
	}
	if h.sinks[0].Calls() != 3 {
		t.Fatalf("sink calls = %d, want 3 attempts", h.sinks[0].Calls())
	}
}

// TestPerKeyOrderWithConcurrency sends interleaved events of many keys
// through several lanes with slow, sometimes failing writes, and checks
// that each key's events are stored in source order.
func TestPerKeyOrderWithConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails bool
	}{{"clean", false}, {"with retried failures", true}} {
		t.Run(tc.name, func(t *testing.T) {
			const keys, perBatch, batches = 16, 100, 40
			seq := map[string]int{}
			var all [][]*pipeline.Event
			for b := range batches {
				evs := make([]*pipeline.Event, perBatch)
				for i := range evs {
					k := fmt.Sprintf("key-%d", (b*perBatch+i*7)%keys)
					n := seq[k]
					seq[k]++
					body := fmt.Sprintf(`{"seq":%d}`, n)
					evs[i] = &pipeline.Event{ID: fmt.Sprintf("%s/%d", k, n), Key: []byte(k), Payload: []byte(body), Body: []byte(body)}
				}
				all = append(all, evs)
			}
			src := pipelinetest.NewSource(all...)
			h := start(t, "batch: {max_events: 50, max_wait: 2ms}\ndelivery: {lanes: 8, max_in_flight: 16}\n"+fastRetry, src, 1, false, nil)
			var rmu sync.Mutex
			rng := rand.New(rand.NewPCG(1, 2))
			failedOnce := map[string]bool{}
			h.sinks[0].WriteFunc = func(ctx context.Context, _ int, batch []*pipeline.Event) error {
				rmu.Lock()
				d := time.Duration(rng.IntN(500)) * time.Microsecond
				be := pipeline.NewBatchError()
				if tc.fails {
					for i, ev := range batch {
						if !failedOnce[ev.ID] && rng.IntN(20) == 0 {
							failedOnce[ev.ID] = true
							be.Fail(i, errors.New("write conflict"))
						}
					}
				}
				rmu.Unlock()
				time.Sleep(d)
				return be.Err()
			}
			h.run()
			if err := h.wait(); err != nil {
				t.Fatal(err)
			}
			writes := h.sinks[0].Writes()
			// The position of each event's last write: retries rewrite the
			// later events of a failed key, so last writes must be in order.
			last := map[string]int{}
			for pos, w := range writes {
				last[w.ID] = pos
			}
			for k, n := range seq {
				prev := -1
				for i := range n {
					pos, ok := last[fmt.Sprintf("%s/%d", k, i)]
					if !ok {
						t.Fatalf("%s/%d never written", k, i)
					}
					if pos < prev {
						t.Fatalf("%s: event %d last written at %d, before event %d (at %d)", k, i, pos, i-1, prev)
					}
					prev = pos
				}
			}
			if !tc.fails && len(writes) != keys*0+batches*perBatch {
				t.Fatalf("clean run wrote %d times, want exactly %d", len(writes), batches*perBatch)
			}
			if h.sinks[0].MaxConcurrent() < 2 {
				t.Fatalf("writes never ran concurrently (max %d): lanes are not parallel", h.sinks[0].MaxConcurrent())
			}
			for i, a := range src.Acks() {
				if !a.Acked || a.Err != nil || a.Calls != 1 {
					t.Fatalf("batch %d ack = %+v", i, a)
				}
			}
		})
	}
}

func TestBoundedMemoryWithBlockedSink(t *testing.T) {
	const perRead, maxEvents, lanes, inFlight = 100, 100, 4, 4
	src := pipelinetest.NewFuncSource(func(i int) []*pipeline.Event {
		return events(fmt.Sprintf("b%d", i), perRead, func(j int) string { return strconv.Itoa(j) })
	})
	h := start(t, fmt.Sprintf("batch: {max_events: %d, max_wait: 1ms}\ndelivery: {lanes: %d, max_in_flight: %d, shutdown_timeout: 50ms}\n", maxEvents, lanes, inFlight), src, 1, false, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		<-ctx.Done() // a sink that never answers
		return ctx.Err()
	}
	h.run()
	// Wait until the source stops being read: backpressure reached it.
	var read int64
	waitFor(t, "the source to be held back", func() bool {
		before := src.EventsRead()
		time.Sleep(100 * time.Millisecond)
		read = src.EventsRead()
		return read == before && read > 0
	})
	// In flight, being assembled per lane, queued to the dispatcher and
	// held by the reader: a fixed bound, however long the sink blocks.
	bound := int64(inFlight*maxEvents + lanes*maxEvents + 3*perRead)
	if read > bound {
		t.Fatalf("read %d events with a blocked sink, want at most %d", read, bound)
	}
	h.cancel()
	if err := h.wait(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for i, a := range src.Acks() {
		if !a.Acked || a.Err == nil || a.Calls != 1 {
			t.Fatalf("batch %d ack = %+v, want one error ack (nothing was written)", i, a)
		}
	}
	if !src.Closed() || !h.sinks[0].Closed() {
		t.Fatal("components not closed after shutdown")
	}
}

func TestShutdownLosesNothingAcked(t *testing.T) {
	src := pipelinetest.NewFuncSource(func(i int) []*pipeline.Event {
		return events(fmt.Sprintf("b%d", i), 50, func(j int) string { return strconv.Itoa(j % 13) })
	})
	h := start(t, "batch: {max_events: 64, max_wait: 2ms}\ndelivery: {lanes: 4, max_in_flight: 8, shutdown_timeout: 5m}\n", src, 1, false, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		time.Sleep(time.Millisecond)
		return nil
	}
	h.run()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if !src.WaitAcked(ctx, 20) {
		t.Fatal("fewer than 20 batches acked")
	}
	h.cancel()
	if err := h.wait(); err != nil {
		t.Fatalf("Run after shutdown = %v, want nil", err)
	}
	stored := h.sinks[0].IDs()
	acks := src.Acks()
	okBatches := 0
	for i, a := range acks {
		if a.Calls != 1 {
			t.Fatalf("batch %d acked %d times", i, a.Calls)
		}
		if a.Err != nil {
			continue
		}
		okBatches++
		for _, ev := range src.Batch(i) {
			if !stored[ev.ID] {
				t.Fatalf("batch %d was acked but event %s was never stored", i, ev.ID)
			}
		}
	}
	// The deadline was generous: everything read should have finished.
	if okBatches != len(acks) {
		t.Fatalf("%d of %d batches acked with an error despite a 5m deadline", len(acks)-okBatches, len(acks))
	}
}

func TestShutdownDeadlineAbandonsUnacked(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 10, oneKey))
	src.BlockWhenDone = true
	h := start(t, "batch: {max_events: 10, max_wait: 1ms}\ndelivery: {lanes: 1, max_in_flight: 1, shutdown_timeout: 20ms}\n", src, 1, false, nil)
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		<-ctx.Done()
		return ctx.Err()
	}
	h.run()
	waitFor(t, "the write to start", func() bool { return h.sinks[0].Calls() > 0 })
	h.cancel()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v, want nil after a shutdown", err)
	}
	a := src.Acks()[0]
	if !a.Acked || !errors.Is(a.Err, pipeline.ErrAbandoned) {
		t.Fatalf("ack = %+v, want ErrAbandoned", a)
	}
	if st := h.p.Stats(); st.Abandoned != 10 || st.Written != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTransformsRetryFailedEventsInOrderAndDrop(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 10, oneKey))
	attempts := map[string]int{}
	var mu sync.Mutex
	flaky := pipelinetest.TransformFunc(func(ctx context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
		mu.Lock()
		defer mu.Unlock()
		be := pipeline.NewBatchError()
		var out []*pipeline.Event
		for i, ev := range in {
			attempts[ev.ID]++
			switch {
			case ev.ID == "e-2" && attempts[ev.ID] == 1:
				be.Fail(i, errors.New("schema registry unavailable"))
			case ev.ID == "e-7":
				be.Fail(i, pipeline.Permanent(errors.New("unknown schema id 42")))
			case ev.ID == "e-4":
				// dropped on purpose, like a filter
			default:
				out = append(out, ev)
			}
		}
		return out, be.Err()
	})
	h := start(t, "transforms:\n  - flaky: {}\nbatch: {max_events: 10, max_wait: 5ms}\n"+fastRetry, src, 1, true, func(r *pipeline.Registry) {
		pipeline.RegisterTransform(r, "flaky", "test", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) { return flaky, nil })
	})
	h.run()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range h.sinks[0].Writes() {
		got = append(got, w.ID)
	}
	want := "e-0 e-1 e-2 e-3 e-5 e-6 e-8 e-9"
	if strings.Join(got, " ") != want {
		t.Fatalf("written %v, want %s (retried e-2 back in its place)", got, want)
	}
	if d := h.dead.Writes(); len(d) != 1 || d[0].ID != "e-7" || !strings.Contains(d[0].Body, `"component":"transforms[0].flaky"`) {
		t.Fatalf("dead letters = %+v", d)
	}
	if st := h.p.Stats(); st.Dropped != 1 || st.DeadLettered != 1 || st.Written != 8 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSourceExhaustedDrainsAndAcksEverything(t *testing.T) {
	src := pipelinetest.NewSource(events("a", 7, oneKey), []*pipeline.Event{}, events("b", 300, func(i int) string { return strconv.Itoa(i) }), []*pipeline.Event{})
	h := start(t, "batch: {max_events: 64, max_wait: 1h}\n", src, 1, false, nil)
	h.run()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
	if got := len(h.sinks[0].IDs()); got != 307 {
		t.Fatalf("stored %d events, want 307 (max_wait must not hold the last partial batches)", got)
	}
	if !src.Closed() || !h.sinks[0].Closed() {
		t.Fatal("components not closed")
	}
}

type settleRecorder struct {
	mu      sync.Mutex
	settled map[string]error
}

func (s *settleRecorder) Apply(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	var out []*pipeline.Event
	for _, ev := range in {
		if ev.ID != "e-0" { // drops e-0: a dropped event is not settled by this step
			out = append(out, ev)
		}
	}
	return out, nil
}

func (s *settleRecorder) Settle(events []*pipeline.Event, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		s.settled[ev.ID] = err
	}
}

func TestSettlerLearnsTheOutcomeOfWhatItPassedOn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sinkFail bool
	}{{"written", false}, {"abandoned", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &settleRecorder{settled: map[string]error{}}
			src := pipelinetest.NewSource(events("e", 4, oneKey))
			src.BlockWhenDone = true
			h := start(t, "transforms: [{rec: {}}]\nbatch: {max_events: 4, max_wait: 1ms}\ndelivery: {lanes: 1, max_in_flight: 1, shutdown_timeout: 10ms}\n"+fastRetry, src, 1, false, func(r *pipeline.Registry) {
				pipeline.RegisterTransform(r, "rec", "test", func(pipeline.BuildContext, *struct{}) (pipeline.Transform, error) { return rec, nil })
			})
			if tc.sinkFail {
				h.sinks[0].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error { return errors.New("down") }
			}
			h.run()
			if tc.sinkFail {
				waitFor(t, "a failed write", func() bool { return h.sinks[0].Calls() > 0 })
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
				defer cancel()
				src.WaitAcked(ctx, 1)
			}
			h.cancel()
			if err := h.wait(); err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.settled) != 3 {
				t.Fatalf("settled %v, want e-1..e-3 (e-0 was dropped by the step)", rec.settled)
			}
			for id, err := range rec.settled {
				if tc.sinkFail != (err != nil) {
					t.Errorf("%s settled with %v", id, err)
				}
			}
		})
	}
}

func TestBuildFailureClosesWhatWasBuilt(t *testing.T) {
	src := pipelinetest.NewSource()
	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	pipelinetest.Register(reg, src, sink)
	pipeline.RegisterSink(reg, "broken", "test", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) {
		return nil, errors.New("output directory does not exist")
	})
	cfg, err := pipeline.Load("b.yaml", []byte("name: b\nsource: {mem: {}}\nsinks: [{mem: {index: 0}}]\ndead_letter: {broken: {}}\n"), reg, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Build(context.Background(), cfg, reg)
	if err == nil || !strings.Contains(err.Error(), "b.yaml:4: build dead_letter.broken: output directory does not exist") {
		t.Fatalf("Build error = %v", err)
	}
	if !src.Closed() || !sink.Closed() {
		t.Fatal("components built before the failure were not closed")
	}
}

// stuckSink is a store that is down: Write and Close return only when
// their context ends. Close records its deadline.
type stuckSink struct {
	mu            sync.Mutex
	closeDeadline time.Time
}

func (s *stuckSink) Write(ctx context.Context, _ []*pipeline.Event) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *stuckSink) Close(ctx context.Context) error {
	d, _ := ctx.Deadline()
	s.mu.Lock()
	s.closeDeadline = d
	s.mu.Unlock()
	<-ctx.Done()
	return nil
}

// TestShutdownWithAStoreDownCountsEveryEventOnce: with the only sink
// stuck, a shutdown abandons the batch being written and the ones queued
// behind it, counts every event read exactly once, and gives closing the
// components the same deadline (shutdown_timeout + 1s from the signal),
// not a second shutdown_timeout.
func TestShutdownWithAStoreDownCountsEveryEventOnce(t *testing.T) {
	src := pipelinetest.NewSource(events("a", 10, oneKey), events("b", 10, oneKey), events("c", 10, oneKey))
	src.BlockWhenDone = true
	stuck := &stuckSink{}
	h := start(t, "  - stuck: {}\nbatch: {max_events: 10, max_wait: 1ms}\ndelivery: {lanes: 1, max_in_flight: 1, shutdown_timeout: 2s}\n", src, 1, false, func(r *pipeline.Registry) {
		pipeline.RegisterSink(r, "stuck", "test", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return stuck, nil })
	})
	h.run()
	// All three batches read: one in the sink, the others queued behind it.
	waitFor(t, "the source to hand over every batch", func() bool { return src.EventsRead() >= 30 })
	began := time.Now()
	h.cancel()
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v, want nil after a shutdown", err)
	}
	st := h.p.Stats()
	if st.Read+st.Abandoned != 30 || st.Abandoned != 30 || st.Written+st.Dropped+st.DeadLettered != st.Read {
		t.Fatalf("stats = %+v, want all 30 events read counted once, as abandoned", st)
	}
	for i, a := range src.Acks() {
		if !a.Acked || !errors.Is(a.Err, pipeline.ErrAbandoned) {
			t.Errorf("batch %d ack = %+v, want ErrAbandoned", i, a)
		}
	}
	stuck.mu.Lock()
	d := stuck.closeDeadline
	stuck.mu.Unlock()
	// The deadline is computed from the signal, so this bound is exact up
	// to the moment the signal was noted (a generous 200ms); the old
	// behaviour gave closing a fresh 2s after the 2s of work.
	if d.IsZero() || d.Sub(began) > 2*time.Second+time.Second+200*time.Millisecond {
		t.Fatalf("sink closed with deadline %v after the signal, want at most shutdown_timeout + 1s", d.Sub(began))
	}
}

// TestReadinessFlipsWhileASinkStalls: batches waiting on a sink that
// completes no write for longer than delivery.stall_threshold make the
// pipeline not ready; the first completed write makes it ready again.
func TestReadinessFlipsWhileASinkStalls(t *testing.T) {
	src := pipelinetest.NewSource(events("e", 10, oneKey))
	src.BlockWhenDone = true
	h := start(t, "batch: {max_events: 10, max_wait: 1ms}\ndelivery: {stall_threshold: 50ms}\n", src, 1, false, nil)
	release := make(chan struct{})
	h.sinks[0].WriteFunc = func(ctx context.Context, _ int, _ []*pipeline.Event) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.run()
	waitFor(t, "readiness to report the stalled sink", func() bool {
		err := h.p.Readiness()
		return err != nil && strings.Contains(err.Error(), "no sink write completed")
	})
	close(release)
	waitFor(t, "readiness to recover after the write", func() bool { return h.p.Readiness() == nil })
	h.cancel()
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
}

// TestKeylessEventsFillOneBatchAtATime: keyless events are not spread over
// the lanes one by one; they fill one lane's batch until it is full, then
// the next lane's, so source batches leave as whole runner batches.
func TestKeylessEventsFillOneBatchAtATime(t *testing.T) {
	noKey := func(int) string { return "" }
	tests := []struct {
		name      string
		batches   [][]*pipeline.Event
		maxEvents int
		want      []int // the sizes of the batches the sink is written, sorted
	}{
		{"source batches of max_events", [][]*pipeline.Event{events("a", 8, noKey), events("b", 8, noKey), events("c", 8, noKey)}, 8, []int{8, 8, 8}},
		{"a source batch of two runner batches", [][]*pipeline.Event{events("a", 16, noKey)}, 8, []int{8, 8}},
		{"small source batches fill one runner batch", [][]*pipeline.Event{events("a", 4, noKey), events("b", 4, noKey)}, 8, []int{8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := pipelinetest.NewSource(tt.batches...)
			h := start(t, fmt.Sprintf("batch: {max_events: %d, max_wait: 1h}\ndelivery: {lanes: 4}\n", tt.maxEvents), src, 1, false, nil)
			var mu sync.Mutex
			var sizes []int
			h.sinks[0].WriteFunc = func(_ context.Context, _ int, batch []*pipeline.Event) error {
				mu.Lock()
				sizes = append(sizes, len(batch))
				mu.Unlock()
				return nil
			}
			h.run()
			if err := h.wait(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(sizes)
			if !slices.Equal(sizes, tt.want) {
				t.Fatalf("sink wrote batches of %v, want %v", sizes, tt.want)
			}
		})
	}
}
