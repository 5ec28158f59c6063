package dedupe

import (
	"context"
	"errors"
	"net"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// poison fails every event whose payload is "poison" for good, like a
// decode step before the dedupe step.
func poison(_ context.Context, in []*pipeline.Event) ([]*pipeline.Event, error) {
	be := pipeline.NewBatchError()
	var out []*pipeline.Event
	for i, ev := range in {
		if string(ev.Payload) == "poison" {
			be.Failures = append(be.Failures, pipeline.EventError{Index: i, Err: pipeline.Permanent(errors.New("malformed"))})
			continue
		}
		out = append(out, ev)
	}
	if len(be.Failures) > 0 {
		return out, be
	}
	return out, nil
}

// TestRedeliveredPoisonNotDeadLetteredTwice drives the real runner over
// deliveries of one batch with two poison events, as after a crash before
// the source committed: a dead letter is skipped only once its write
// completed (a delivery whose dead-letter write failed leaves nothing
// remembered), and an event replayed from a dead letter that fails again
// gets a dead letter of its own.
func TestRedeliveredPoisonNotDeadLetteredTwice(t *testing.T) {
	batch := func(replayed bool) []*pipeline.Event {
		evs := []*pipeline.Event{ev("p1", "poison"), ev("g1", ""), ev("p2", "poison")}
		if replayed {
			for _, e := range evs {
				e.Meta.Set(pipeline.MetaReplayedFrom, "crm.events.dead/0/"+e.ID)
			}
		}
		return evs
	}
	runs := []struct {
		name       string
		deadFails  bool
		replayed   bool
		wantErr    bool
		deadLetter []string
	}{
		{name: "dead-letter write fails", deadFails: true, wantErr: true},
		{name: "redelivery writes them", deadLetter: []string{"p1", "p2"}},
		{name: "second redelivery skips them", deadLetter: nil},
		{name: "third redelivery skips them", deadLetter: nil},
		{name: "replayed copies fail again", replayed: true, deadLetter: []string{"p1", "p2"}},
		{name: "the replay run again", replayed: true, deadLetter: nil},
	}
	for _, st := range runnerStores("sluice-test-dl") {
		t.Run(st.name, func(t *testing.T) {
			d := st.build(t)
			for i, r := range runs {
				sink, dead := &pipelinetest.Sink{}, &pipelinetest.Sink{}
				if r.deadFails {
					dead.WriteFunc = func(context.Context, int, []*pipeline.Event) error {
						return pipeline.Permanent(errors.New("topic does not exist"))
					}
				}
				src := pipelinetest.NewSource(batch(r.replayed))
				err := runOnce(t, d, src, sink, dead)
				if (err != nil) != r.wantErr {
					t.Fatalf("run %d (%s): err %v, want error %v", i, r.name, err, r.wantErr)
				}
				if acks := src.Acks(); len(acks) != 1 || !acks[0].Acked || (acks[0].Err != nil) != r.wantErr {
					t.Fatalf("run %d (%s): acks %+v", i, r.name, acks)
				}
				var got []string
				for _, w := range dead.Writes() {
					got = append(got, w.ID)
				}
				sort.Strings(got)
				if !slices.Equal(got, r.deadLetter) {
					t.Fatalf("run %d (%s): dead letters %v, want %v", i, r.name, got, r.deadLetter)
				}
				if d.remote != nil {
					waitIdle(t, d)
					d.local = newMemoryStore(d.cfg.Capacity, d.cfg.Window.D(), time.Now) // a restart: only Redis remembers
				}
			}
		})
	}
}

// TestDeadLettersWrittenWhenTheStoreCannotAnswer: with Redis unreachable
// the dedupe step cannot tell which dead letters were written, so every
// redelivered poison event is dead-lettered again (at least once), never
// skipped on a guess.
func TestDeadLettersWrittenWhenTheStoreCannotAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var c Config
	c.SetDefaults()
	c.Store, c.Redis.Addr, c.Redis.Timeout = "redis", addr, pipeline.Duration(200*time.Millisecond)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	for i := range 2 {
		d.local = newMemoryStore(c.Capacity, c.Window.D(), time.Now) // a restart: only Redis would remember
		sink, dead := &pipelinetest.Sink{}, &pipelinetest.Sink{}
		src := pipelinetest.NewSource([]*pipeline.Event{ev("p1", "poison"), ev("p2", "poison")})
		if err := runOnce(t, d, src, sink, dead); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if n := len(dead.Writes()); n != 2 {
			t.Fatalf("delivery %d: %d dead letters written, want 2", i, n)
		}
	}
}
