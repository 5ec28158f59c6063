package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// TestConformance runs the source table on the webhooks source with signed
// SendGrid deliveries of up to three events each (one request, one batch).
// It is a push source: it keeps no checkpoint and never ends, and what
// stands for a checkpoint is the HTTP answer (2xx: the provider forgets
// the events; anything else: it sends them again), which the suite checks
// through Answer.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, func(t *testing.T) *conformance.SourceUnderTest {
		p := &provider{answers: map[string]chan int{}}
		return &conformance.SourceUnderTest{
			Feed: p.feed,
			Open: p.open,
			Answer: func(t *testing.T, id string) bool {
				p.mu.Lock()
				ch := p.answers[id]
				p.mu.Unlock()
				if ch == nil {
					t.Fatalf("no request carried %s", id)
				}
				status := testwait.Recv(t, ch, "answer to the request carrying "+id, nil)
				ch <- status // for the request's other events
				return status >= 200 && status < 300
			},
		}
	})
}

// provider plays SendGrid: it signs deliveries and posts each on its own
// goroutine (the answer comes only after the ack), holding deliveries made
// while no source listens until one is opened.
type provider struct {
	mu      sync.Mutex
	url     string // "" while no source is open
	held    []delivery
	fed     int
	answers map[string]chan int // event id → its request's status (-1: not sent)
	wg      sync.WaitGroup
}

// delivery is one request: its body and where its status goes (shared by
// its events in provider.answers).
type delivery struct {
	body   []byte
	answer chan int
}

func (p *provider) feed(t *testing.T, n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	now := time.Now().Unix()
	for n > 0 {
		var evs []string
		answer := make(chan int, 1)
		for range min(n, 3) {
			id := "conf-" + strconv.Itoa(p.fed)
			p.fed++
			n--
			evs = append(evs, fmt.Sprintf(`{"email":"grace.hopper@globex.io","timestamp":%d,"event":"delivered","sg_event_id":%q}`, now, id))
			ids = append(ids, "sendgrid:"+id)
			p.answers["sendgrid:"+id] = answer
		}
		p.held = append(p.held, delivery{body: []byte("[" + strings.Join(evs, ",") + "]"), answer: answer})
	}
	p.sendHeld(t)
	return ids
}

// sendHeld posts the held deliveries if a source listens; p.mu is held.
func (p *provider) sendHeld(t *testing.T) {
	if p.url == "" {
		return
	}
	for _, d := range p.held {
		body, answer := d.body, d.answer
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, err := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", signSendGrid(t, sendgridKey(), ts, body))
		req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			status := -1
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			answer <- status
		}()
	}
	p.held = nil
}

func (p *provider) open(t *testing.T) pipeline.Source {
	s := openConformanceSource(t)
	p.mu.Lock()
	p.url = "http://" + s.Addr().String() + "/webhooks/sendgrid"
	p.sendHeld(t)
	p.mu.Unlock()
	t.Cleanup(p.wg.Wait)
	return &closing{Source: s, closed: func() {
		p.mu.Lock()
		p.url = ""
		p.mu.Unlock()
	}}
}

// closing tells the provider a source stopped listening.
type closing struct {
	*webhooks.Source
	closed func()
}

func (c *closing) Close(ctx context.Context) error {
	c.closed()
	return c.Source.Close(ctx)
}

// openConformanceSource is the one place the conformance test builds a
// source: SendGrid only, with an ack_timeout only a hang reaches and room
// for every request the suite sends at once.
func openConformanceSource(t *testing.T) *webhooks.Source {
	var c webhooks.Config
	c.SetDefaults()
	c.Listen = "127.0.0.1:0"
	c.AckTimeout = pipeline.Duration(testwait.Bound())
	c.SendGrid = &webhooks.SendGridConfig{PublicKey: sendgridPublicKey(t, sendgridKey())}
	s, err := webhooks.New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
