package webhooks_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// Test keys, made once per test binary.
var (
	sendgridKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	snsKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			panic(err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	})
)

const mailgunKey = "key-test-0123456789abcdef"

// sendgridPublicKey is the key as SendGrid shows it: base64 of PKIX DER.
func sendgridPublicKey(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// signSendGrid follows SendGrid's scheme: ECDSA P-256 over
// SHA-256(timestamp + payload), ASN.1 DER, base64.
func signSendGrid(t *testing.T, k *ecdsa.PrivateKey, ts string, body []byte) string {
	t.Helper()
	h := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// mailgunBody is a Mailgun JSON webhook signed with key: hex
// HMAC-SHA256(timestamp + token).
func mailgunBody(key, token string, ts time.Time, id, event, recipient string) []byte {
	tss := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(tss + token))
	return fmt.Appendf(nil, `{"signature":{"timestamp":%q,"token":%q,"signature":%q},"event-data":{"event":%q,"timestamp":%d.25,"id":%q,"recipient":%q,"message":{"headers":{"message-id":"m1@mg.sluice.example"}}}}`,
		tss, token, hex.EncodeToString(m.Sum(nil)), event, ts.Unix(), id, recipient)
}

// replayStores are the Mailgun token stores the Mailgun tests run against:
// the in-memory set (mailgun.replay_store absent) and Redis, the test
// stack's, under a prefix of the test's own. yaml is the replay_store
// value, "" for none.
var replayStores = []struct {
	name string
	yaml func(t *testing.T) string
}{
	{"memory", func(*testing.T) string { return "" }},
	{"redis", func(t *testing.T) string {
		return redisReplayStore(t, testenv.RedisAddr(t), webhooks.RedisTestPrefix(t))
	}},
}

// withReplayStore sets mailgun.replay_store in allProviders-like YAML.
func withReplayStore(sourceYAML, store string) string {
	if store == "" {
		return sourceYAML
	}
	out := strings.Replace(sourceYAML, "max_age: 5m}", "max_age: 5m, replay_store: "+store+"}", 1)
	if out == sourceYAML {
		panic("no mailgun section with max_age: 5m to add replay_store to")
	}
	return out
}

// redisReplayStore is a replay_store value for the Redis at addr.
func redisReplayStore(t *testing.T, addr, prefix string) string {
	return fmt.Sprintf(`{redis: {addr: %q, prefix: %q, timeout: 1s}}`, addr, prefix)
}

// snsMsg is an SNS delivery as the tests build it.
type snsMsg struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	Token            string  `json:"Token,omitempty"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject,omitempty"`
	Message          string  `json:"Message"`
	SubscribeURL     string  `json:"SubscribeURL,omitempty"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
}

const (
	testTopic   = "arn:aws:sns:us-east-1:123456789012:ses-events"
	testCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
)

// sign signs m per the SNS documentation: the canonical "Key\nValue\n"
// string (Notification: Message, MessageId, Subject if any, Timestamp,
// TopicArn, Type; confirmations: Message, MessageId, SubscribeURL,
// Timestamp, Token, TopicArn, Type), SHA1withRSA for version 1 and
// SHA256withRSA for version 2.
func (m *snsMsg) sign(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	var b strings.Builder
	kv := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	kv("Message", m.Message)
	kv("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			kv("Subject", *m.Subject)
		}
	} else {
		kv("SubscribeURL", m.SubscribeURL)
	}
	kv("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		kv("Token", m.Token)
	}
	kv("TopicArn", m.TopicArn)
	kv("Type", m.Type)
	var sig []byte
	var err error
	if m.SignatureVersion == "1" {
		d := sha1.Sum([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	return m.body(t)
}

func (m *snsMsg) body(t *testing.T) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sesEventJSON(id, kind, recipient string, at time.Time) string {
	return fmt.Sprintf(`{"eventType":%q,"mail":{"timestamp":%q,"messageId":%q,"source":"outreach@sluice.example","destination":[%q]},"delivery":{"timestamp":%q,"processingTimeMillis":512,"recipients":[%q],"smtpResponse":"250 2.0.0 OK"}}`,
		kind, at.Add(-time.Second).Format(time.RFC3339Nano), id, recipient, at.Format(time.RFC3339Nano), recipient)
}

func notification(id, version string, at time.Time) *snsMsg {
	return &snsMsg{
		Type: "Notification", MessageID: id, TopicArn: testTopic,
		Message:   sesEventJSON("ses-"+id, "Delivery", "Ada.Lovelace@Example.com", at),
		Timestamp: at.Format("2006-01-02T15:04:05.000Z"), SignatureVersion: version, SigningCertURL: testCertURL,
	}
}

func confirmation(id, version string) *snsMsg {
	return &snsMsg{
		Type: "SubscriptionConfirmation", MessageID: id, TopicArn: testTopic, Token: "tok-" + id,
		Message:      "You have chosen to subscribe to the topic " + testTopic,
		SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + testTopic + "&Token=tok-" + id,
		Timestamp:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: version, SigningCertURL: testCertURL,
	}
}

// fakeAWS is the HTTP transport the source fetches certificates and
// confirms subscriptions through: it serves the test certificate for any
// URL (the source's URL checks must stop the bad ones before they get
// here) and records every request.
type fakeAWS struct {
	cert []byte
	mu   sync.Mutex
	urls []string
	fail bool
}

func (f *fakeAWS) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.urls = append(f.urls, r.URL.String())
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return nil, errors.New("network down")
	}
	body := []byte("<ConfirmSubscriptionResponse/>")
	if strings.HasSuffix(r.URL.Path, ".pem") {
		body = f.cert
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(body)), Header: http.Header{}, Request: r}, nil
}

func (f *fakeAWS) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.urls...)
}

// harness runs a real pipeline: webhooks source → memory sink.
type harness struct {
	src     *webhooks.Source
	sink    *pipelinetest.Sink
	base    string
	metrics *prometheus.Registry
	aws     *fakeAWS
	cancel  context.CancelFunc
	done    chan error
}

func startPipeline(t *testing.T, sourceYAML string, sink *pipelinetest.Sink, opts ...webhooks.Option) *harness {
	t.Helper()
	if sink == nil {
		sink = &pipelinetest.Sink{}
	}
	_, certPEM := snsKey()
	h := &harness{sink: sink, metrics: prometheus.NewRegistry(), aws: &fakeAWS{cert: certPEM}, done: make(chan error, 1)}
	opts = append([]webhooks.Option{webhooks.WithHTTPClient(&http.Client{Transport: h.aws})}, opts...)
	built := make(chan *webhooks.Source, 1)
	reg := pipeline.NewRegistry()
	pipeline.RegisterSource(reg, "webhooks", "test", func(bc pipeline.BuildContext, c *webhooks.Config) (pipeline.Source, error) {
		s, err := webhooks.New(bc, *c, opts...)
		if err == nil {
			built <- s
		}
		return s, err
	})
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := "name: webhooks-test\nsource:\n  webhooks:\n" + indent(sourceYAML, "    ") + `
sinks: [{mem: {index: 0}}]
batch: {max_events: 100, max_wait: 2ms}
retry: {initial_interval: 5ms, max_interval: 20ms}
delivery: {lanes: 2, max_in_flight: 4, shutdown_timeout: 2s}
`
	env := map[string]string{"SENDGRID_KEY": sendgridPublicKey(t, sendgridKey()), "MAILGUN_KEY": mailgunKey}
	cfg, err := pipeline.Load("webhooks-test.yaml", []byte(doc), reg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	p, err := pipeline.Build(ctx, cfg, reg, pipeline.WithLogger(slog.New(slog.DiscardHandler)), pipeline.WithMetricsRegisterer(h.metrics))
	if err != nil {
		t.Fatal(err)
	}
	h.src = <-built
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := testwait.Recv(t, h.done, "pipeline stop after cancel", nil); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testwait.ForEvery(t, 2*time.Millisecond, "the webhook server to listen", func() bool { return h.src.Addr() != nil }, nil)
	h.base = "http://" + h.src.Addr().String()
	return h
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n")
}

// post sends body to path with headers and returns the status.
func (h *harness) post(t *testing.T, path string, body []byte, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// envelope is what the source writes, as decode/enrich read it.
type envelope struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	Type       string          `json:"type"`
	AccountID  string          `json:"account_id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Key        string          `json:"key"`
	Data       json.RawMessage `json:"data"`
}

func parseEnvelope(t *testing.T, body string) envelope {
	t.Helper()
	var e envelope
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("envelope %s: %v", body, err)
	}
	return e
}

// writesByID indexes the sink's writes.
func writesByID(s *pipelinetest.Sink) map[string]pipelinetest.Write {
	m := map[string]pipelinetest.Write{}
	for _, w := range s.Writes() {
		m[w.ID] = w
	}
	return m
}
