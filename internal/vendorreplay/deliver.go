package vendorreplay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// DeliveryReport is how the webhooks source answered one provider's
// recorded deliveries.
type DeliveryReport struct {
	Provider  string
	Delivered int      // answered 2xx: the events are in the stream
	Attempts  int      // requests sent, retries included
	Rejected  []string // answered 4xx, which a provider does not retry: "<file>: <status> <body>"
}

// Deliverer posts recorded webhook bodies to a webhooks source.
type Deliverer struct {
	set    *Set
	keys   *Keys
	client *http.Client
	// certURL replaces each SNS body's SigningCertURL, so the source
	// fetches the replay's certificate (through AWS) rather than the one
	// the body was recorded with.
	certURL string
	// giveUp bounds the retries of one delivery.
	giveUp time.Duration
}

// NewDeliverer signs with keys and sends with client (nil: a client with a
// 15 s timeout).
func NewDeliverer(set *Set, keys *Keys, client *http.Client) *Deliverer {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	return &Deliverer{set: set, keys: keys, client: client, giveUp: time.Minute,
		certURL: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-replay.pem"}
}

// Deliver posts every recorded delivery to base, the source's URL up to
// its path prefix (http://127.0.0.1:8088/webhooks): SNS first, so the
// subscription is confirmed before its notifications, then SendGrid and
// Mailgun, each in file order. Like the providers, it retries a delivery
// answered 5xx or not answered, with backoff, for up to a minute, and does
// not retry one answered 4xx. The error is for a delivery that never got
// an answer below 500.
func (d *Deliverer) Deliver(ctx context.Context, base string) ([]DeliveryReport, error) {
	var reports []DeliveryReport
	for _, provider := range []string{SES, SendGrid, Mailgun} {
		rep := DeliveryReport{Provider: provider}
		for _, dl := range d.set.deliveries[provider] {
			req, err := d.signed(provider, dl.body, time.Now())
			if err != nil {
				return reports, fmt.Errorf("replay %s: %w", dl.name, err)
			}
			status, body, err := d.post(ctx, base+"/"+provider, req, &rep.Attempts)
			if err != nil {
				return append(reports, rep), fmt.Errorf("replay %s: %w", dl.name, err)
			}
			if status >= 300 {
				rep.Rejected = append(rep.Rejected, fmt.Sprintf("%s: %d %s", dl.name, status, strings.TrimSpace(string(body))))
				continue
			}
			rep.Delivered++
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

// DeliverTampered posts the first recorded Mailgun delivery with one
// character of its signature changed and returns the status: a source
// that verifies signatures answers 401 and enqueues nothing.
func (d *Deliverer) DeliverTampered(ctx context.Context, base string) (int, error) {
	if len(d.set.deliveries[Mailgun]) == 0 {
		return 0, errors.New("replay: no Mailgun delivery recorded")
	}
	req, err := d.signed(Mailgun, d.set.deliveries[Mailgun][0].body, time.Now())
	if err != nil {
		return 0, err
	}
	sig := gjson.GetBytes(req.body, "signature.signature").String()
	flipped := "0"
	if strings.HasPrefix(sig, "0") {
		flipped = "1"
	}
	if req.body, err = sjson.SetBytes(req.body, "signature.signature", flipped+sig[1:]); err != nil {
		return 0, err
	}
	var attempts int
	status, _, err := d.post(ctx, base+"/"+Mailgun, req, &attempts)
	return status, err
}

type signedRequest struct {
	body   []byte
	header http.Header
}

// signed signs one recorded body as its provider would send it at now.
func (d *Deliverer) signed(provider string, body []byte, now time.Time) (signedRequest, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	switch provider {
	case SendGrid:
		ts := strconv.FormatInt(now.Unix(), 10)
		sig, err := d.keys.signSendGrid(ts, body)
		if err != nil {
			return signedRequest{}, err
		}
		h.Set("X-Twilio-Email-Event-Webhook-Signature", sig)
		h.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
		h.Set("User-Agent", "SendGrid Event API")
	case Mailgun:
		var err error
		if body, err = d.keys.signMailgun(body, now); err != nil {
			return signedRequest{}, err
		}
		h.Set("User-Agent", "mailgun/treq-16.12.0")
	case SES:
		// SNS stamps a message when it is published; the source refuses a
		// Timestamp older than its max_age, so the replay publishes now.
		var err error
		if body, err = sjson.SetBytes(body, "SigningCertURL", d.certURL); err != nil {
			return signedRequest{}, err
		}
		if body, err = sjson.SetBytes(body, "Timestamp", now.UTC().Format("2006-01-02T15:04:05.000Z")); err != nil {
			return signedRequest{}, err
		}
		if body, err = d.keys.signSNS(body); err != nil {
			return signedRequest{}, err
		}
		h.Set("Content-Type", "text/plain; charset=UTF-8")
		h.Set("X-Amz-Sns-Message-Type", gjson.GetBytes(body, "Type").String())
		h.Set("X-Amz-Sns-Message-Id", gjson.GetBytes(body, "MessageId").String())
		h.Set("X-Amz-Sns-Topic-Arn", gjson.GetBytes(body, "TopicArn").String())
		h.Set("User-Agent", "Amazon Simple Notification Service Agent")
	default:
		return signedRequest{}, fmt.Errorf("unknown provider %q", provider)
	}
	return signedRequest{body: body, header: h}, nil
}

// post sends req until it is answered below 500, counting attempts.
func (d *Deliverer) post(ctx context.Context, url string, req signedRequest, attempts *int) (int, []byte, error) {
	type answer struct {
		status int
		body   []byte
	}
	a, err := backoff.Retry(ctx, func() (answer, error) {
		*attempts++
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req.body))
		if err != nil {
			return answer{}, backoff.Permanent(err)
		}
		hr.Header = req.header.Clone()
		resp, err := d.client.Do(hr)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode >= 500 {
			return answer{}, fmt.Errorf("POST %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return answer{resp.StatusCode, body}, nil
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: 5 * time.Second,
	}), backoff.WithMaxElapsedTime(d.giveUp))
	return a.status, a.body, err
}
