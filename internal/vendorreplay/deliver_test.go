package vendorreplay

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/internal/poller/pollertest"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// startWebhooks runs the real webhooks source, verifying with keys, into
// a memory sink, and returns its base URL.
func startWebhooks(t *testing.T, keys *Keys, sink *pipelinetest.Sink) string {
	t.Helper()
	built := make(chan *webhooks.Source, 1)
	register := func(reg *pipeline.Registry) {
		pipeline.RegisterSource(reg, "webhooks", "test", func(bc pipeline.BuildContext, c *webhooks.Config) (pipeline.Source, error) {
			s, err := webhooks.New(bc, *c, webhooks.WithHTTPClient(&http.Client{Transport: keys.AWS()}))
			if err == nil {
				built <- s
			}
			return s, err
		})
	}
	run := pollertest.Start(t, register, fmt.Sprintf(`  webhooks:
    listen: 127.0.0.1:0
    sendgrid: {public_key: %q}
    mailgun: {signing_key: %q}
    ses: {regions: [us-east-1], topic_arns: ["arn:aws:sns:us-east-1:123456789012:ses-events"]}`, keys.SendGridPublicKey(), keys.MailgunSigningKey()), sink)
	t.Cleanup(func() {
		if err := run.Stop(t); err != nil {
			t.Error(err)
		}
	})
	src := <-built
	pollertest.WaitFor(t, "the webhooks source to listen", func() bool { return src.Addr() != nil })
	return "http://" + src.Addr().String() + "/webhooks"
}

// TestDeliverThroughTheWebhooksSource: every recorded delivery is accepted
// with a signature the source verifies, the SNS subscription is
// confirmed, and a broken signature is refused with nothing enqueued.
func TestDeliverThroughTheWebhooksSource(t *testing.T) {
	set := loadRecorded(t)
	keys, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	sink := &pipelinetest.Sink{}
	base := startWebhooks(t, keys, sink)
	d := NewDeliverer(set, keys, nil)
	reports, err := d.Deliver(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if r.Delivered != set.Deliveries(r.Provider) || len(r.Rejected) > 0 || r.Attempts != r.Delivered {
			t.Errorf("%s: %+v, want all %d delivered at the first attempt", r.Provider, r, set.Deliveries(r.Provider))
		}
	}
	if got := len(sink.Writes()); got != set.WebhookEvents() {
		t.Errorf("%d events stored, want %d", got, set.WebhookEvents())
	}
	status, err := d.DeliverTampered(t.Context(), base)
	if err != nil || status != http.StatusUnauthorized {
		t.Fatalf("tampered delivery: %d %v, want 401", status, err)
	}
	if got := len(sink.Writes()); got != set.WebhookEvents() {
		t.Errorf("%d events stored after the tampered delivery, want still %d", got, set.WebhookEvents())
	}
}

// TestDeliverRetriesWhatTheSourceFailed: a delivery answered 503 is sent
// again, as the providers do, and counted once delivered.
func TestDeliverRetriesWhatTheSourceFailed(t *testing.T) {
	set := loadRecorded(t)
	keys, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	sink := &pipelinetest.Sink{}
	base, _ := url.Parse(startWebhooks(t, keys, sink))
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: base.Host})
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			http.Error(w, "stream unavailable", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	reports, err := NewDeliverer(set, keys, nil).Deliver(t.Context(), flaky.URL+"/webhooks")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		if r.Delivered != set.Deliveries(r.Provider) || r.Attempts != 2*r.Delivered {
			t.Errorf("%s: %+v, want %d delivered in twice as many attempts", r.Provider, r, set.Deliveries(r.Provider))
		}
	}
	if got := len(sink.Writes()); got != set.WebhookEvents() {
		t.Errorf("%d events stored, want %d", got, set.WebhookEvents())
	}
}

func TestAWSServesOnlySNS(t *testing.T) {
	keys, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: keys.AWS()}
	for _, u := range []string{"https://sns.us-east-1.amazonaws.com.evil.example/x.pem", "http://sns.us-east-1.amazonaws.com/x.pem", "https://example.com/x.pem"} {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("GET %s answered %d; want refused", u, resp.StatusCode)
		}
	}
	resp, err := c.Get("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("certificate: %v %v", resp, err)
	}
	resp.Body.Close()
}
