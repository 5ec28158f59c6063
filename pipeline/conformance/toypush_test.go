package conformance_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
)

// toyPush is a push source in memory, like the webhooks source: each
// request of a sender is one batch of up to three events, and the sender
// waits for its answer.
type toyPush struct {
	queue chan *toyRequest
	// answersEarly makes it the broken source of
	// TestSuiteCatchesBadPushSource: it tells the sender its events were
	// taken as soon as Read hands them out, before the ack.
	answersEarly bool

	mu      sync.Mutex
	answers map[string]chan bool // event id → its request's answer
	fed     int
}

type toyRequest struct {
	events []*pipeline.Event
	answer chan bool
}

func (p *toyPush) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case r := <-p.queue:
		if p.answersEarly {
			r.answer <- true
			return r.events, func(error) {}, nil
		}
		return r.events, func(err error) { r.answer <- err == nil }, nil
	}
}

// Close answers the requests still queued "send again", as the webhooks
// source answers them 503.
func (p *toyPush) Close(context.Context) error {
	for {
		select {
		case r := <-p.queue:
			r.answer <- false
		default:
			return nil
		}
	}
}

// feed plays senders: n events in requests of up to three.
func (p *toyPush) feed(t *testing.T, n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for n > 0 {
		r := &toyRequest{answer: make(chan bool, 1)}
		for range min(n, 3) {
			ev := conformance.Event(fmt.Sprintf("push-%d", p.fed), "k", p.fed)
			p.fed++
			n--
			r.events = append(r.events, ev)
			ids = append(ids, ev.ID)
			p.answers[ev.ID] = r.answer
		}
		p.queue <- r
	}
	return ids
}

func (p *toyPush) answer(t *testing.T, id string) bool {
	p.mu.Lock()
	ch := p.answers[id]
	p.mu.Unlock()
	taken := testwait.Recv(t, ch, "answer to the request carrying "+id, nil)
	ch <- taken // for the request's other events
	return taken
}

func toyPushFactory(answersEarly bool) conformance.SourceFactory {
	return func(t *testing.T) *conformance.SourceUnderTest {
		p := &toyPush{queue: make(chan *toyRequest, 64), answers: map[string]chan bool{}, answersEarly: answersEarly}
		return &conformance.SourceUnderTest{
			Feed:   p.feed,
			Open:   func(*testing.T) pipeline.Source { return p },
			Answer: p.answer,
		}
	}
}

func TestToyPushSource(t *testing.T) { conformance.TestSource(t, toyPushFactory(false)) }

// TestSuiteCatchesBadPushSource runs the suite on a push source that
// answers "taken" before the ack, in a child process, and expects the
// error-ack case to fail there.
func TestSuiteCatchesBadPushSource(t *testing.T) {
	suiteCatches(t, "CONFORMANCE_BAD_PUSH", "a push source that answers before the ack",
		func(t *testing.T) { conformance.TestSource(t, toyPushFactory(true)) }, "NoCheckpointPastErrorAck", "OneAckPerBatch")
}
