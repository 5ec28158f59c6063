package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/vendorreplay"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/sources/webhooks"
)

//go:embed demo/recorded/*.yaml
var demoRecorded embed.FS

// recordedConnectors are the connector pipelines of the recorded demo, in
// demo/recorded/<name>.yaml.
var recordedConnectors = []string{"salesforce", "hubspot", "greenhouse", "lever", "webhooks"}

// replay is one run of the recorded demo: the recorded set, the API
// server the pollers call, and the keys the webhook bodies are signed with.
type replay struct {
	set    *vendorreplay.Set
	api    *vendorreplay.API
	keys   *vendorreplay.Keys
	aws    *vendorreplay.AWS
	srv    *http.Server
	served chan struct{}
	url    string
	log    *slog.Logger

	// webhookSource is the webhooks source the demo's registry built.
	webhookSource chan *webhooks.Source
	// delivered is closed when deliver returns, so the webhooks source is
	// kept serving until then.
	delivered  chan struct{}
	deliveries []vendorreplay.DeliveryReport
	tampered   int
}

// startReplay loads the embedded recorded set and serves the vendor APIs
// on a free local port.
func startReplay(log *slog.Logger) (*replay, error) {
	set, err := vendorreplay.Load(vendorreplay.Recorded())
	if err != nil {
		return nil, err
	}
	keys, err := vendorreplay.NewKeys()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vendor replay: %w", err)
	}
	r := &replay{
		set: set, api: vendorreplay.NewAPI(set), keys: keys, aws: keys.AWS(),
		served: make(chan struct{}), url: "http://" + ln.Addr().String(), log: log,
		webhookSource: make(chan *webhooks.Source, 1), delivered: make(chan struct{}),
	}
	r.srv = &http.Server{Handler: r.api, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(r.served)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("vendor replay server stopped", "err", err)
		}
	}()
	return r, nil
}

func (r *replay) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	<-r.served
}

// vars are the values the connector pipelines' ${...} take.
func (r *replay) vars() map[string]string {
	c := vendorreplay.DemoCredentials()
	return map[string]string{
		"SLUICE_REPLAY_URL":                      r.url,
		"SLUICE_REPLAY_SALESFORCE_CLIENT_ID":     c.SalesforceClientID,
		"SLUICE_REPLAY_SALESFORCE_CLIENT_SECRET": c.SalesforceClientSecret,
		"SLUICE_REPLAY_HUBSPOT_TOKEN":            c.HubSpotToken,
		"SLUICE_REPLAY_GREENHOUSE_API_KEY":       c.GreenhouseAPIKey,
		"SLUICE_REPLAY_LEVER_API_KEY":            c.LeverAPIKey,
		"SLUICE_REPLAY_SENDGRID_PUBLIC_KEY":      r.keys.SendGridPublicKey(),
		"SLUICE_REPLAY_MAILGUN_SIGNING_KEY":      r.keys.MailgunSigningKey(),
	}
}

// registry is the CLI's registry with the webhooks source fetching SNS
// certificates from the replay and handing itself to the demo, which
// needs its address to deliver to.
func (r *replay) registry() *pipeline.Registry {
	return registryWith(func(reg *pipeline.Registry) {
		pipeline.RegisterSource(reg, "webhooks", "webhooks source wired to the demo's replay", func(bc pipeline.BuildContext, c *webhooks.Config) (pipeline.Source, error) {
			s, err := webhooks.New(bc, *c, webhooks.WithHTTPClient(&http.Client{Transport: r.aws, Timeout: 5 * time.Second}))
			if err == nil {
				select {
				case r.webhookSource <- s:
				default:
				}
			}
			return s, err
		})
	})
}

// sinkYAML is what the demo appends to each connector pipeline: the demo
// topic, or, without Kafka, the file standing in for it.
func sinkYAML(mode string) string {
	if mode == "files" {
		return "sinks:\n  - file: {path: \"${SLUICE_OUT_DIR}/stream.jsonl\"}\n"
	}
	return "sinks:\n  - kafka: {brokers: [\"${SLUICE_KAFKA_BROKERS}\"], topic: \"${SLUICE_DEMO_TOPIC}\"}\n"
}

// connectorYAML is one connector pipeline as the demo runs it.
func connectorYAML(name, mode string) ([]byte, error) {
	doc, err := demoRecorded.ReadFile("demo/recorded/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	return append(doc, sinkYAML(mode)...), nil
}

// plan is the recorded demo: every connector against the replay, into the
// demo topic (or stream file), and the consumer draining it. Each
// connector is stopped once it has written every recorded event it is
// given.
func (r *replay) plan(mode string, getenv func(string) (string, bool)) (demoPlan, error) {
	reg := r.registry()
	expect := map[string]int{
		"salesforce": r.set.Records(vendorreplay.Salesforce), "hubspot": r.set.Records(vendorreplay.HubSpot),
		"greenhouse": r.set.Records(vendorreplay.Greenhouse), "lever": r.set.Records(vendorreplay.Lever),
		"webhooks": r.set.WebhookEvents(),
	}
	plan := demoPlan{registry: reg, report: r.report}
	for _, name := range recordedConnectors {
		doc, err := connectorYAML(name, mode)
		if err != nil {
			return demoPlan{}, err
		}
		cfg, err := pipeline.Load("demo/recorded/"+name+".yaml (embedded)", doc, reg, getenv)
		if err != nil {
			return demoPlan{}, err
		}
		f := demoFeeder{cfg: cfg, expect: int64(expect[name])}
		if name == "webhooks" {
			f.hold = r.delivered
		}
		plan.feeders = append(plan.feeders, f)
	}
	consumerName, consumerDoc := consumerYAML(mode)
	if mode == "files" {
		plan.consumerLast = true
		consumerName = "demo/recorded/consumer-files.yaml (embedded)"
		var err error
		if consumerDoc, err = demoRecorded.ReadFile("demo/recorded/consumer-files.yaml"); err != nil {
			return demoPlan{}, err
		}
	}
	consumer, err := pipeline.Load(consumerName, consumerDoc, reg, getenv)
	if err != nil {
		return demoPlan{}, err
	}
	plan.consumer = consumer
	plan.alongside = r.deliver
	return plan, nil
}

// deliver waits for the webhooks source to listen, then posts the
// recorded deliveries to it, and one with a broken signature.
func (r *replay) deliver(ctx context.Context) error {
	defer close(r.delivered)
	var src *webhooks.Source
	select {
	case src = <-r.webhookSource:
	case <-ctx.Done():
		return nil
	}
	for src.Addr() == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	base := "http://" + src.Addr().String() + "/webhooks"
	d := vendorreplay.NewDeliverer(r.set, r.keys, nil)
	var err error
	if r.deliveries, err = d.Deliver(ctx, base); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted: the summary says how far it got
		}
		return fmt.Errorf("demo webhooks: %w", err)
	}
	for _, rep := range r.deliveries {
		if len(rep.Rejected) > 0 {
			return fmt.Errorf("demo webhooks: the source refused recorded %s deliveries: %s", rep.Provider, strings.Join(rep.Rejected, "; "))
		}
	}
	if r.tampered, err = d.DeliverTampered(ctx, base); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("demo webhooks: %w", err)
	}
	if r.tampered != http.StatusUnauthorized {
		return fmt.Errorf("demo webhooks: a Mailgun delivery with a broken signature was answered %d, not 401", r.tampered)
	}
	return nil
}

// report prints what the replay answered the connectors.
func (r *replay) report(out io.Writer) {
	fmt.Fprintln(out, "\nreplayed vendor APIs (recorded set: internal/vendorreplay/recorded):")
	stats := r.api.Stats()
	for _, v := range []string{vendorreplay.Salesforce, vendorreplay.HubSpot, vendorreplay.Greenhouse, vendorreplay.Lever} {
		s := stats[v]
		fmt.Fprintf(out, "  %-10s %3d records in %d objects; %d requests, %d pages, %d records served, %d answered 401, %d answered 429\n",
			v, r.set.Records(v), len(r.set.Objects(v)), s.Requests, s.Pages, s.Records, s.Unauthorized, s.Throttled)
	}
	for _, d := range r.deliveries {
		fmt.Fprintf(out, "  %-10s %3d deliveries answered 2xx in %d requests\n", d.Provider, d.Delivered, d.Attempts)
	}
	if n := len(r.aws.Confirmations()); n > 0 {
		fmt.Fprintf(out, "  %-10s %3d SNS subscription confirmed through SubscribeURL\n", "ses", n)
	}
	if r.tampered != 0 {
		fmt.Fprintf(out, "  %-10s %3d delivery with a broken signature, answered %d, nothing enqueued\n", "mailgun", 1, r.tampered)
	}
}

// printDemoConfig prints the pipelines a demo would run.
func printDemoConfig(out io.Writer, source, mode string) error {
	if source == "generated" {
		if mode == "files" {
			_, err := out.Write(demoFiles)
			return err
		}
		_, consumer := consumerYAML(mode)
		_, err := fmt.Fprintf(out, "%s---\n%s", demoProducer, consumer)
		return err
	}
	for _, name := range recordedConnectors {
		doc, err := connectorYAML(name, mode)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s---\n", doc)
	}
	_, consumer := consumerYAML(mode)
	if mode == "files" {
		var err error
		if consumer, err = demoRecorded.ReadFile("demo/recorded/consumer-files.yaml"); err != nil {
			return err
		}
	}
	_, err := out.Write(consumer)
	return err
}
