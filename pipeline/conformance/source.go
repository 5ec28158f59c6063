package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// SourceUnderTest is one input (a file, a topic, a generator's settings)
// and how to open a source on it. The suite closes every source it opens.
type SourceUnderTest struct {
	// Open opens a source on the input. Opened again after Close, it must
	// resume from its checkpoint (when Checkpoints is true).
	Open func(t *testing.T) pipeline.Source
	// Feed appends n events to the input and returns their ids. Nil for a
	// source that makes its own events: then Total is how many it makes.
	Feed  func(t *testing.T, n int) []string
	Total int
	// Finite sources return io.EOF once their input is consumed; the
	// others block in Read until the context ends.
	Finite bool
	// Checkpoints: a source reopened after Close resumes after the
	// batches acked with nil, and redelivers the rest. Without it (and
	// without Answer) the resume cases are skipped.
	Checkpoints bool
	// Answer is for push sources (webhooks), whose "checkpoint" is the
	// answer to the sender: a sender told the event was taken forgets it,
	// one told otherwise sends it again. Answer waits (bounded only
	// against a hang) until the sender of the event id was answered and
	// reports whether it was told the event was taken. With Answer set the
	// resume cases check the answers instead of reopening the source:
	// every event of a batch acked with nil answered taken, every event of
	// a batch acked with an error answered "send again".
	Answer func(t *testing.T, id string) (taken bool)
}

// SourceFactory makes a SourceUnderTest with an input of its own.
type SourceFactory func(t *testing.T) *SourceUnderTest

type sourceCase struct {
	name string
	run  func(t *testing.T, s *SourceUnderTest)
}

var sourceCases = []sourceCase{
	{"OneAckPerBatch", sourceOneAckPerBatch},
	{"AcksWhileReading", sourceAcksWhileReading},
	{"NoCheckpointPastErrorAck", sourceNoCheckpointPastError},
	{"FiniteEndsWithEOF", sourceFiniteEOF},
	{"ReadReturnsWhenContextEnds", sourceContextEnds},
	{"CloseAfterLastAck", sourceCloseAfterLastAck},
	{"CloseBeforeReading", sourceCloseBeforeReading},
}

// TestSource runs the source table: every batch has one ack and acks in
// any order, from any goroutine and while Read runs, settle it; no
// checkpoint (or, for a push source, no answer "taken") passes a batch
// acked with an error; io.EOF ends a finite source; Read returns when its
// context ends; and Close after the last ack, or before any Read, returns
// nil without checkpointing what was not acked. The flags
// Finite, Checkpoints and Answer say which cases apply; the others are
// skipped with t.Skip and the reason.
func TestSource(t *testing.T, factory SourceFactory) {
	for _, c := range sourceCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, factory(t)) })
	}
}

type readBatch struct {
	ids []string
	ack pipeline.AckFunc
}

// open opens a source that the test closes at the end if the case did not.
func open(t *testing.T, s *SourceUnderTest) (pipeline.Source, func() error) {
	src := s.Open(t)
	closed := false
	closeFn := func() error {
		if closed {
			return nil
		}
		closed = true
		return src.Close(testContext(t))
	}
	t.Cleanup(func() { _ = closeFn() })
	return src, closeFn
}

// feed puts n events in the input and returns the ids to expect.
func feed(t *testing.T, s *SourceUnderTest, n int) []string {
	if s.Feed != nil {
		return s.Feed(t, n)
	}
	return nil
}

// readUntil reads batches until every id of want was seen (want nil: until
// Total events or io.EOF). It fails the test on a Read error other than
// io.EOF, a batch without an ack, or the hang bound.
func readUntil(t *testing.T, s *SourceUnderTest, src pipeline.Source, want []string) (batches []readBatch, eof bool) {
	t.Helper()
	ctx := testContext(t)
	missing := map[string]bool{}
	for _, id := range want {
		missing[id] = true
	}
	n := 0
	for {
		if want != nil && len(missing) == 0 || want == nil && s.Total > 0 && n >= s.Total {
			return batches, false
		}
		// A source may return its last batch together with io.EOF.
		b, ack, err := src.Read(ctx)
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			t.Fatalf("Read after %d events (%d still missing): %v", n, len(missing), err)
		}
		if len(b) == 0 {
			if ack != nil {
				ack(nil)
			}
			if eof {
				return batches, true
			}
			continue
		}
		if ack == nil {
			t.Fatalf("Read returned %d events without an ack", len(b))
		}
		rb := readBatch{ack: ack}
		for _, ev := range b {
			rb.ids = append(rb.ids, ev.ID)
			delete(missing, ev.ID)
		}
		n += len(b)
		batches = append(batches, rb)
		if eof {
			return batches, true
		}
	}
}

// ackAll settles every batch of bs with err.
func ackAll(bs []readBatch, err error) {
	for _, b := range bs {
		b.ack(err)
	}
}

func allIDs(bs []readBatch) []string {
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ids...)
	}
	return ids
}

func sourceOneAckPerBatch(t *testing.T, s *SourceUnderTest) {
	want := feed(t, s, 20)
	src, closeSrc := open(t, s)
	batches, _ := readUntil(t, s, src, want)
	if len(batches) == 0 {
		t.Fatal("no batch read")
	}
	for _, id := range want {
		if !slices.Contains(allIDs(batches), id) {
			t.Fatalf("event %s fed but not read", id)
		}
	}
	// Acks arrive in any order and from any goroutine: settle them last
	// first, each from a goroutine of its own.
	done := make(chan struct{}, len(batches))
	for i := len(batches) - 1; i >= 0; i-- {
		go func() { batches[i].ack(nil); done <- struct{}{} }()
		<-done
	}
	if s.Answer != nil {
		checkAnswers(t, s, allIDs(batches), true, "its batch was acked with nil")
	}
	if err := closeSrc(); err != nil {
		t.Fatalf("Close after every batch was acked: %v", err)
	}
	if !s.Checkpoints {
		return
	}
	// Reopened, the source serves only what came after.
	more := feed(t, s, 3)
	src2, _ := open(t, s)
	again, _ := readUntil(t, s, src2, more)
	for _, id := range allIDs(again) {
		if slices.Contains(allIDs(batches), id) {
			t.Errorf("event %s was acked with nil, yet redelivered after reopening", id)
		}
	}
	ackAll(again, nil)
}

// sourceAcksWhileReading settles every batch at once, each ack on a
// goroutine of its own, while another Read is running, as the runner's
// lanes ack while its reader reads (run it with -race).
func sourceAcksWhileReading(t *testing.T, s *SourceUnderTest) {
	want := feed(t, s, 12)
	src, closeSrc := open(t, s)
	batches, eof := readUntil(t, s, src, want)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	reading := make(chan error, 1)
	go func() {
		if eof {
			reading <- nil
			return
		}
		for {
			// Whatever comes now is settled at once.
			b, ack, err := src.Read(ctx)
			if len(b) > 0 && ack != nil {
				ack(nil)
			}
			if err != nil {
				reading <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for _, b := range batches {
		wg.Add(1)
		go func() { defer wg.Done(); b.ack(nil) }()
	}
	wg.Wait()
	cancel()
	select {
	case err := <-reading:
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
			t.Fatalf("Read while batches were acked: %v", err)
		}
	case <-time.After(hangBound()):
		t.Fatal("Read did not return after its context ended")
	}
	if s.Answer != nil {
		checkAnswers(t, s, allIDs(batches), true, "its batch was acked with nil")
	}
	if err := closeSrc(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !s.Checkpoints {
		return
	}
	more := feed(t, s, 3)
	src2, _ := open(t, s)
	again, _ := readUntil(t, s, src2, more)
	ackAll(again, nil)
	for _, id := range allIDs(again) {
		if slices.Contains(allIDs(batches), id) {
			t.Errorf("event %s was acked with nil, yet redelivered after reopening", id)
		}
	}
}

func sourceNoCheckpointPastError(t *testing.T, s *SourceUnderTest) {
	if !s.Checkpoints && s.Answer == nil {
		t.Skip("skipped: the source keeps no checkpoint and answers no sender, so there is nothing to resume from")
	}
	want := feed(t, s, 12)
	src, closeSrc := open(t, s)
	batches, _ := readUntil(t, s, src, want)
	if len(batches) < 2 {
		t.Fatalf("the source served all %d events in one batch; the case needs a failed batch followed by a stored one: give it smaller batches", len(want))
	}
	// The first batch fails, every later one succeeds: the checkpoint must
	// stay before the first.
	batches[0].ack(errors.New("conformance: a sink failed"))
	ackAll(batches[1:], nil)
	if s.Answer != nil {
		checkAnswers(t, s, batches[0].ids, false, "its batch was acked with an error")
		checkAnswers(t, s, allIDs(batches[1:]), true, "its batch was acked with nil")
	}
	if !s.Checkpoints {
		if err := closeSrc(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return
	}
	if err := closeSrc(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	src2, _ := open(t, s)
	again, _ := readUntil(t, s, src2, batches[0].ids)
	ackAll(again, nil)
}

// checkAnswers fails the test for every id whose sender was not answered
// taken (or, with taken false, was told it was).
func checkAnswers(t *testing.T, s *SourceUnderTest, ids []string, taken bool, why string) {
	t.Helper()
	for _, id := range ids {
		if got := s.Answer(t, id); got != taken {
			if taken {
				t.Errorf("the sender of %s was told to send it again, though %s", id, why)
			} else {
				t.Errorf("the sender of %s was told it was taken, though %s", id, why)
			}
		}
	}
}

func sourceFiniteEOF(t *testing.T, s *SourceUnderTest) {
	if !s.Finite {
		t.Skip("skipped: the source is not finite: it waits for new input instead of ending")
	}
	want := feed(t, s, 7)
	src, closeSrc := open(t, s)
	saved := s.Total
	s.Total = 0 // read to the end, not to a count
	batches, eof := readUntil(t, s, src, nil)
	s.Total = saved
	if !eof {
		t.Fatal("a finite source did not end with io.EOF")
	}
	got := allIDs(batches)
	for _, id := range want {
		if !slices.Contains(got, id) {
			t.Errorf("event %s fed but io.EOF came first", id)
		}
	}
	if want == nil && s.Total > 0 && len(got) != s.Total {
		t.Errorf("source made %d events before io.EOF, want %d", len(got), s.Total)
	}
	ackAll(batches, nil)
	if err := closeSrc(); err != nil {
		t.Fatalf("Close after io.EOF: %v", err)
	}
}

func sourceContextEnds(t *testing.T, s *SourceUnderTest) {
	if s.Finite {
		t.Skip("skipped: a finite source ends with io.EOF rather than waiting")
	}
	if s.Feed == nil {
		t.Skip("skipped: the source makes its own events, so its input is never exhausted")
	}
	want := feed(t, s, 2)
	src, _ := open(t, s)
	batches, _ := readUntil(t, s, src, want)
	ackAll(batches, nil)
	// Nothing more to read: Read must return once its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		b, ack, err := src.Read(ctx)
		if err == nil && len(b) > 0 && ack != nil {
			ack(nil)
			err = fmt.Errorf("read %d unexpected events", len(b))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Fatalf("Read after its context ended: %v", err)
		}
	case <-time.After(hangBound()):
		t.Fatal("Read did not return after its context ended")
	}
}

func sourceCloseAfterLastAck(t *testing.T, s *SourceUnderTest) {
	want := feed(t, s, 5)
	src, closeSrc := open(t, s)
	batches, _ := readUntil(t, s, src, want)
	if len(batches) == 0 {
		t.Fatal("no batch read")
	}
	ackAll(batches, nil)
	if err := closeSrc(); err != nil {
		t.Fatalf("Close after the last ack: %v", err)
	}
}

// sourceCloseBeforeReading closes a source that was never read (the runner
// does when another component fails to start): Close returns nil, and
// whatever the source fetched ahead is not checkpointed: reopened, it
// serves every event again (push: every sender is told to send again).
func sourceCloseBeforeReading(t *testing.T, s *SourceUnderTest) {
	want := feed(t, s, 5)
	_, closeSrc := open(t, s)
	if err := closeSrc(); err != nil {
		t.Fatalf("Close before any Read: %v", err)
	}
	if s.Answer != nil {
		checkAnswers(t, s, want, false, "no Read took it before Close")
	}
	if !s.Checkpoints {
		return
	}
	src2, _ := open(t, s)
	again, _ := readUntil(t, s, src2, want)
	ackAll(again, nil)
}
