package webhooks

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// snsMessage is an SNS HTTP(S) delivery.
type snsMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     string  `json:"SubscribeURL"`
}

// snsHost matches sns.<region>.amazonaws.com.
var snsHost = regexp.MustCompile(`^sns\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com$`)

// checkSNSURL accepts only https://sns.<region>.amazonaws.com/... with
// region allowed (any when regions is empty).
func checkSNSURL(raw string, regions []string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "https" || u.User != nil || (u.Port() != "" && u.Port() != "443") {
		return nil, errors.New("not an https URL on the default port")
	}
	m := snsHost.FindStringSubmatch(u.Hostname())
	if m == nil {
		return nil, fmt.Errorf("host %q is not sns.<region>.amazonaws.com", u.Hostname())
	}
	if len(regions) > 0 && !slices.Contains(regions, m[1]) {
		return nil, fmt.Errorf("region %s is not allowed", m[1])
	}
	return u, nil
}

// snsStringToSign is the documented canonical string: "Name\nvalue\n" for
// each signed field in this order; Subject only when present.
func snsStringToSign(m *snsMessage) (string, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k); b.WriteByte('\n'); b.WriteString(v); b.WriteByte('\n') }
	switch m.Type {
	case "Notification":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	default:
		return "", fmt.Errorf("unknown SNS message type %q", m.Type)
	}
	return b.String(), nil
}

// verifySNS checks Signature (SignatureVersion 1: SHA1withRSA, 2:
// SHA256withRSA) with the certificate's public key.
func verifySNS(m *snsMessage, cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("signing certificate has no RSA key")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return errors.New("signature is not base64")
	}
	s, err := snsStringToSign(m)
	if err != nil {
		return err
	}
	switch m.SignatureVersion {
	case "1":
		d := sha1.Sum([]byte(s))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA1, d[:], sig)
	case "2":
		d := sha256.Sum256([]byte(s))
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
	}
	return fmt.Errorf("unsupported SignatureVersion %q", m.SignatureVersion)
}

// certCache keeps fetched signing certificates by URL.
type certCache struct {
	mu    sync.Mutex
	certs map[string]*x509.Certificate
	max   int
}

func newCertCache(max int) *certCache {
	return &certCache{certs: map[string]*x509.Certificate{}, max: max}
}

func (s *Source) signingCert(ctx context.Context, u *url.URL) (*x509.Certificate, error) {
	key := u.String()
	s.certs.mu.Lock()
	c, ok := s.certs.certs[key]
	s.certs.mu.Unlock()
	if ok && s.now().Before(c.NotAfter) {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SES.FetchTimeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch signing certificate: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("signing certificate is not a PEM certificate")
	}
	c, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing certificate: %w", err)
	}
	now := s.now()
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, errors.New("signing certificate is not valid now")
	}
	s.certs.mu.Lock()
	if len(s.certs.certs) >= s.certs.max {
		clear(s.certs.certs)
	}
	s.certs.certs[key] = c
	s.certs.mu.Unlock()
	return c, nil
}

// sesMail is the part of an SES event we read for id, key and time.
type sesEvent struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Timestamp   string   `json:"timestamp"`
		Destination []string `json:"destination"`
	} `json:"mail"`
	Delivery *struct {
		Timestamp  string   `json:"timestamp"`
		Recipients []string `json:"recipients"`
	} `json:"delivery"`
	Bounce *struct {
		Timestamp         string `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		Timestamp            string `json:"timestamp"`
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	DeliveryDelay *struct {
		Timestamp         string `json:"timestamp"`
		DelayedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"delayedRecipients"`
	} `json:"deliveryDelay"`
	// Engagement events carry only their own time; the recipient is the
	// mail's destination.
	Open         *sesStamp `json:"open"`
	Click        *sesStamp `json:"click"`
	Subscription *sesStamp `json:"subscription"`
}

type sesStamp struct {
	Timestamp string `json:"timestamp"`
}

// parseSNS decodes the SNS envelope.
func parseSNS(body []byte) (*snsMessage, error) {
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, badRequest("body is not an SNS message: %v", err)
	}
	if m.Type == "" || m.MessageID == "" || m.TopicArn == "" || m.Timestamp == "" {
		return nil, badRequest("SNS message lacks Type, MessageId, TopicArn or Timestamp")
	}
	return &m, nil
}

// parseSESEvent reads the SES event an SNS Notification carries.
func parseSESEvent(m *snsMessage) (vendorEvent, error) {
	data := []byte(m.Message)
	var e sesEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return vendorEvent{}, badRequest("SNS Message is not an SES event: %v", err)
	}
	ve := vendorEvent{id: m.MessageID, vendor: e.EventType, data: data}
	if ve.vendor == "" {
		ve.vendor = e.NotificationType
	}
	if ve.vendor == "" {
		return vendorEvent{}, badRequest("SES event has no eventType or notificationType")
	}
	ts := ""
	switch {
	case e.Delivery != nil:
		ts = e.Delivery.Timestamp
		if len(e.Delivery.Recipients) > 0 {
			ve.recipient = e.Delivery.Recipients[0]
		}
	case e.Bounce != nil:
		ts = e.Bounce.Timestamp
		if len(e.Bounce.BouncedRecipients) > 0 {
			ve.recipient = e.Bounce.BouncedRecipients[0].EmailAddress
		}
	case e.Complaint != nil:
		ts = e.Complaint.Timestamp
		if len(e.Complaint.ComplainedRecipients) > 0 {
			ve.recipient = e.Complaint.ComplainedRecipients[0].EmailAddress
		}
	case e.DeliveryDelay != nil:
		ts = e.DeliveryDelay.Timestamp
		if len(e.DeliveryDelay.DelayedRecipients) > 0 {
			ve.recipient = e.DeliveryDelay.DelayedRecipients[0].EmailAddress
		}
	case e.Open != nil:
		ts = e.Open.Timestamp
	case e.Click != nil:
		ts = e.Click.Timestamp
	case e.Subscription != nil:
		ts = e.Subscription.Timestamp
	}
	if ve.recipient == "" && len(e.Mail.Destination) > 0 {
		ve.recipient = e.Mail.Destination[0]
	}
	for _, t := range []string{ts, e.Mail.Timestamp, m.Timestamp} {
		if pt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			ve.time = pt.UTC()
			break
		}
	}
	return ve, nil
}

// verifySNSRequest parses and verifies an SNS delivery and checks its topic
// against the route; it returns the message and its canonical string.
func (s *Source) verifySNSRequest(ctx context.Context, r *http.Request, body []byte) (*snsMessage, string, *httpError) {
	cfg := s.cfg.SES
	if a := r.PathValue("account"); a != "" && len(cfg.AccountTopics) > 0 && cfg.AccountTopics[a] == nil {
		return nil, "", reject(http.StatusNotFound, outcomeForbidden, "unknown account")
	}
	m, err := parseSNS(body)
	if err != nil {
		return nil, "", err.(*httpError)
	}
	if h := r.Header.Get("X-Amz-Sns-Message-Type"); h != "" && h != m.Type {
		return nil, "", badRequest("x-amz-sns-message-type %q does not match Type %q", h, m.Type)
	}
	canonical, cerr := snsStringToSign(m)
	if cerr != nil {
		return nil, "", badRequest("%v", cerr)
	}
	certURL, uerr := checkSNSURL(m.SigningCertURL, cfg.Regions)
	if uerr != nil {
		return nil, "", unauthorized("SigningCertURL rejected: %v", uerr)
	}
	cert, cerr := s.signingCert(ctx, certURL)
	if cerr != nil {
		s.log.Warn("SNS signing certificate unavailable", "url", certURL.String(), "err", cerr)
		return nil, "", reject(http.StatusBadGateway, outcomeUpstreamFail, "signing certificate unavailable")
	}
	if err := verifySNS(m, cert); err != nil {
		return nil, "", unauthorized("invalid SNS signature")
	}
	region, ok := arnRegion(m.TopicArn)
	if !ok || (len(cfg.Regions) > 0 && !slices.Contains(cfg.Regions, region)) {
		return nil, "", reject(http.StatusForbidden, outcomeForbidden, "topic region not allowed")
	}
	if !cfg.topicAllowed(r.PathValue("account"), m.TopicArn) {
		return nil, "", reject(http.StatusForbidden, outcomeForbidden, "topic not allowed")
	}
	return m, canonical, nil
}

func (s *Source) ses(ctx context.Context, r *http.Request, body []byte, account string) (*result, *httpError) {
	cfg := s.cfg.SES
	m, canonical, herr := s.verifySNSRequest(ctx, r, body)
	if herr != nil {
		return nil, herr
	}
	// Everything that can refuse the message comes before it is
	// admitted, which records its MessageId.
	var ev *pipeline.Event
	var subscribe *url.URL
	switch m.Type {
	case "SubscriptionConfirmation":
		u, err := checkSNSURL(m.SubscribeURL, cfg.Regions)
		if err != nil {
			return nil, reject(http.StatusForbidden, outcomeForbidden, "SubscribeURL rejected: %v", err)
		}
		subscribe = u
	case "Notification":
		ve, perr := parseSESEvent(m)
		if perr != nil {
			return nil, perr.(*httpError)
		}
		ev = wrap("ses", account, canonicalType("ses", ve.vendor), ve)
		ev.Meta = append(ev.Meta, pipeline.MetaPair{Key: MetaTopicARN, Value: m.TopicArn})
	}
	signedAt, terr := time.Parse(time.RFC3339Nano, m.Timestamp)
	if terr != nil {
		return nil, unauthorized("invalid SNS Timestamp")
	}
	signed := sha256.Sum256([]byte(canonical))
	settled, herr := s.admit(ctx, s.sesGuard, m.MessageID, signed, signedAt, m.MessageID)
	if herr != nil {
		return nil, herr
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		res, herr := s.confirm(ctx, m, subscribe)
		if herr != nil {
			// SNS retries it: let the identical retry in.
			settled(context.WithoutCancel(ctx), false)
			return nil, herr
		}
		res.settled = settled
		return res, nil
	case "UnsubscribeConfirmation":
		s.log.Info("SNS unsubscribe confirmation received", "topic", m.TopicArn)
		return &result{settled: settled}, nil
	}
	return &result{events: []*pipeline.Event{ev}, settled: settled}, nil
}

// confirm GETs SubscribeURL u, checked to be on sns.<allowed
// region>.amazonaws.com.
func (s *Source) confirm(ctx context.Context, m *snsMessage, u *url.URL) (*result, *httpError) {
	cfg := s.cfg.SES
	if cfg.ConfirmSubscriptions != nil && !*cfg.ConfirmSubscriptions {
		// SubscribeURL is a capability for this topic only; an operator
		// confirms by opening it (docs/webhooks.md).
		s.log.Warn("SNS subscription awaiting manual confirmation", "topic", m.TopicArn, "subscribe_url", u.String())
		return &result{outcome: outcomeAccepted}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.FetchTimeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, badRequest("SubscribeURL: %v", err)
	}
	resp, err := s.client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
	}
	if err != nil {
		s.log.Warn("SNS subscription confirmation failed", "topic", m.TopicArn, "err", err)
		return nil, reject(http.StatusBadGateway, outcomeUpstreamFail, "subscription confirmation failed")
	}
	s.log.Info("SNS subscription confirmed", "topic", m.TopicArn)
	return &result{outcome: outcomeConfirmed}, nil
}
