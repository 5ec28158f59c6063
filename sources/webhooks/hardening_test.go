package webhooks_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	"github.com/sluicehq/sluice/sources/webhooks"
)

// flakySink fails writes until up is set.
func flakySink(up *atomic.Bool) *pipelinetest.Sink {
	return &pipelinetest.Sink{WriteFunc: func(context.Context, int, []*pipeline.Event) error {
		if !up.Load() {
			return fmt.Errorf("stream unavailable")
		}
		return nil
	}}
}

// skewedClock is a clock the test moves forward.
func skewedClock() (func() time.Time, *atomic.Int64) {
	var skew atomic.Int64
	return func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }, &skew
}

// sendgridHeaders signs body at ts with k.
func sendgridHeaders(t *testing.T, k *ecdsa.PrivateKey, ts time.Time, body []byte) map[string]string {
	tss := strconv.FormatInt(ts.Unix(), 10)
	return map[string]string{"X-Twilio-Email-Event-Webhook-Signature": signSendGrid(t, k, tss, body), "X-Twilio-Email-Event-Webhook-Timestamp": tss}
}

// malleate re-encodes an ECDSA signature as (r, N-s): as valid, other bytes.
func malleate(t *testing.T, sigB64 string) string {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	sig.S = new(big.Int).Sub(elliptic.P256().Params().N, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// withStore adds a replay_store to a provider's flow mapping ending in "}".
func withStore(section, store string) string {
	if store == "" {
		return section
	}
	return strings.TrimSuffix(section, "}") + ", replay_store: " + store + "}"
}

// SendGrid requests are fresh by default (max_age 10m) and single-use: an
// exact replay, or one with the signature re-encoded, is refused; a
// request we answered 503 is accepted when SendGrid retries it unchanged,
// even once it is stale.
func TestSendGridFreshAndSingleUse(t *testing.T) {
	for _, st := range replayStores {
		t.Run(st.name, func(t *testing.T) {
			var up atomic.Bool
			up.Store(true)
			clock, skew := skewedClock()
			sink := flakySink(&up)
			h := startPipeline(t, "listen: 127.0.0.1:0\nack_timeout: 300ms\n"+withStore(`sendgrid: {public_key: "${SENDGRID_KEY}"}`, st.yaml(t)), sink, webhooks.WithClock(clock))
			key := sendgridKey()
			now := time.Now()
			body := func(id string) []byte {
				return fmt.Appendf(nil, `[{"email":"a@b.c","timestamp":%d,"event":"open","sg_event_id":%q}]`, now.Unix(), id)
			}
			fresh := sendgridHeaders(t, key, now, body("sg-1"))
			remade := map[string]string{"X-Twilio-Email-Event-Webhook-Signature": malleate(t, fresh["X-Twilio-Email-Event-Webhook-Signature"]), "X-Twilio-Email-Event-Webhook-Timestamp": fresh["X-Twilio-Email-Event-Webhook-Timestamp"]}
			failing := sendgridHeaders(t, key, now, body("sg-3"))
			for _, tc := range []struct {
				name   string
				body   []byte
				hdr    map[string]string
				sinkUp bool
				skew   time.Duration
				status int
			}{
				{"signed in 2001", body("sg-0"), sendgridHeaders(t, key, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), body("sg-0")), true, 0, 401},
				{"signed 11 minutes ago", body("sg-0"), sendgridHeaders(t, key, now.Add(-11*time.Minute), body("sg-0")), true, 0, 401},
				{"signed 11 minutes ahead", body("sg-0"), sendgridHeaders(t, key, now.Add(11*time.Minute), body("sg-0")), true, 0, 401},
				{"fresh", body("sg-1"), fresh, true, 0, 200},
				{"exact replay", body("sg-1"), fresh, true, 0, 401},
				{"replay, signature re-encoded", body("sg-1"), remade, true, 0, 401},
				{"same events signed again", body("sg-1"), sendgridHeaders(t, key, now.Add(time.Second), body("sg-1")), true, 0, 200},
				{"sink down", body("sg-3"), failing, false, 0, 503},
				{"identical retry, stale by then", body("sg-3"), failing, true, 30 * time.Minute, 200},
				{"the retry replayed", body("sg-3"), failing, true, 30 * time.Minute, 401},
			} {
				up.Store(tc.sinkUp)
				skew.Store(int64(tc.skew))
				if got := h.post(t, "/webhooks/sendgrid", tc.body, tc.hdr); got != tc.status {
					t.Fatalf("%s: status %d, want %d", tc.name, got, tc.status)
				}
			}
			if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_events_total", nil); got != 3 {
				t.Errorf("events answered 2xx = %v, want 3", got)
			}
		})
	}
}

// SNS messages are fresh (their Timestamp within ses.max_age, 90m by
// default) and single-use by MessageId; a message we answered 503 is
// accepted when SNS retries it unchanged.
func TestSNSFreshAndSingleUse(t *testing.T) {
	for _, st := range replayStores {
		t.Run(st.name, func(t *testing.T) {
			var up atomic.Bool
			up.Store(true)
			clock, skew := skewedClock()
			h := startPipeline(t, "listen: 127.0.0.1:0\nack_timeout: 300ms\n"+withStore(`ses: {topic_arns: ["`+testTopic+`"]}`, st.yaml(t)), flakySink(&up), webhooks.WithClock(clock))
			key, _ := snsKey()
			now := time.Now().UTC()
			first := notification("sns-1", "2", now).sign(t, key)
			other := notification("sns-1", "2", now)
			other.Message = sesEventJSON("ses-other", "Bounce", "eve@example.com", now)
			failing := notification("sns-3", "2", now.Add(-80*time.Minute)).sign(t, key)
			confirm := confirmation("c-1", "2").sign(t, key)
			for _, tc := range []struct {
				name   string
				body   []byte
				sinkUp bool
				skew   time.Duration
				status int
			}{
				{"published in 2019", notification("sns-0", "2", time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)).sign(t, key), true, 0, 401},
				{"published 2 hours ago", notification("sns-0", "2", now.Add(-2*time.Hour)).sign(t, key), true, 0, 401},
				{"fresh", first, true, 0, 200},
				{"exact replay", first, true, 0, 401},
				{"same MessageId, other message", other.sign(t, key), true, 0, 401},
				{"subscription confirmation", confirm, true, 0, 200},
				{"subscription confirmation replayed", confirm, true, 0, 401},
				{"sink down", failing, false, 0, 503},
				{"identical retry, stale by then", failing, true, 20 * time.Minute, 200},
				{"the retry replayed", failing, true, 20 * time.Minute, 401},
			} {
				up.Store(tc.sinkUp)
				skew.Store(int64(tc.skew))
				if got := h.post(t, "/webhooks/ses", tc.body, nil); got != tc.status {
					t.Fatalf("%s: status %d, want %d", tc.name, got, tc.status)
				}
			}
			confirmations := 0
			for _, u := range h.aws.requests() {
				if strings.Contains(u, "Action=ConfirmSubscription") {
					confirmations++
				}
			}
			if confirmations != 1 {
				t.Errorf("%d subscription confirmations, want 1", confirmations)
			}
			if got := pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_events_total", nil); got != 2 {
				t.Errorf("events answered 2xx = %v, want 2", got)
			}
		})
	}
}

// With allow_any_topic any topic is accepted (validate warns about it).
func TestSNSAllowAnyTopic(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nses: {allow_any_topic: true}\n", nil)
	key, _ := snsKey()
	m := notification("sns-any", "2", time.Now().UTC())
	m.TopicArn = "arn:aws:sns:eu-west-1:999999999999:someone-elses"
	if got := h.post(t, "/webhooks/ses", m.sign(t, key), nil); got != 200 {
		t.Fatalf("status %d, want 200", got)
	}
}

// With account keys each tenant's route takes only its own signatures (or
// SNS topics): a request one tenant signed cannot be filed under another
// tenant's account, and an account that has no key is 404.
func TestAccountKeysBindTheRoute(t *testing.T) {
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	topicB := "arn:aws:sns:us-east-1:123456789012:tenant-b"
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
account_id: acct_default
sendgrid: {account_keys: {acct_a: %q, acct_b: %q}}
mailgun: {account_keys: {acct_a: key-a, acct_b: key-b}}
ses: {account_topics: {acct_a: [%q], acct_b: [%q]}}
`, sendgridPublicKey(t, keyA), sendgridPublicKey(t, keyB), testTopic, topicB)
	h := startPipeline(t, cfg, nil)
	snsPriv, _ := snsKey()
	n := 0
	// signedBy makes a fresh request of provider signed by tenant a's key
	// (SNS: from tenant a's topic); id is its event's id.
	signedBy := func(provider string) (body []byte, hdr map[string]string, id string) {
		n++
		id = fmt.Sprintf("%s-%d", provider, n)
		now := time.Now().UTC()
		switch provider {
		case "sendgrid":
			body = fmt.Appendf(nil, `[{"email":"a@b.c","timestamp":%d,"event":"open","sg_event_id":%q}]`, now.Unix(), id)
			return body, sendgridHeaders(t, keyA, now, body), id
		case "mailgun":
			return mailgunBody("key-a", "tok-"+id, now, id, "delivered", "a@b.c"), nil, id
		}
		return notification(id, "2", now).sign(t, snsPriv), nil, id
	}
	for _, provider := range []string{"sendgrid", "mailgun", "ses"} {
		for _, tc := range []struct {
			path    string
			status  int
			written bool
		}{
			{"/acct_a", 200, true},
			{"/acct_b", map[string]int{"sendgrid": 401, "mailgun": 401, "ses": 403}[provider], false},
			{"/acct_c", 404, false},
			{"", map[string]int{"sendgrid": 404, "mailgun": 404, "ses": 403}[provider], false},
		} {
			t.Run(provider+tc.path, func(t *testing.T) {
				body, hdr, id := signedBy(provider)
				if got := h.post(t, "/webhooks/"+provider+tc.path, body, hdr); got != tc.status {
					t.Fatalf("status %d, want %d", got, tc.status)
				}
				// Event ids are namespaced by provider (sendgrid:<sg_event_id>, …).
				w, ok := writesByID(h.sink)[provider+":"+id]
				if ok != tc.written {
					t.Fatalf("written %v, want %v", ok, tc.written)
				}
				if ok {
					if e := parseEnvelope(t, w.Body); e.AccountID != "acct_a" {
						t.Errorf("account_id %q, want acct_a", e.AccountID)
					}
				}
			})
		}
	}
}

// "..", "..." and other dot-only segments are never accounts.
func TestAccountSegmentIsNotADotPath(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nsendgrid: {public_key: \"${SENDGRID_KEY}\"}\n", nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, seg := range []string{"..", "...", ".", "....", ".hidden", "%2e%2e%2e"} {
		t.Run(seg, func(t *testing.T) {
			body := fmt.Appendf(nil, `[{"email":"a@b.c","timestamp":%d,"event":"open","sg_event_id":"sg-%s"}]`, time.Now().Unix(), seg)
			req, err := http.NewRequest(http.MethodPost, h.base+"/webhooks/sendgrid/"+seg, strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range sendgridHeaders(t, sendgridKey(), time.Now(), body) {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 300 {
				t.Fatalf("status %d for account %q", resp.StatusCode, seg)
			}
		})
	}
	if n := len(h.sink.Writes()); n != 0 {
		t.Fatalf("%d events written under a dot-path account", n)
	}
}

// trickle opens a connection that sends a request's headers and then one
// byte of its body every now and then, the way a slow attacker holds a
// connection. It returns once the server started reading the body (it
// answered the Expect: 100-continue), or fails with what it answered.
func trickle(t *testing.T, addr, path string, declared int, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, addr, declared)
	// A generous bound: only a hang trips it.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the headers: %v", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("the server answered %q before reading the body", strings.TrimSpace(line))
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	return c
}

// Unauthenticated connections trickling their bodies do not hold the
// handling slots: with more of them than max_concurrent, a signed request
// is still answered 200.
func TestSlowBodiesDoNotStarveSignedRequests(t *testing.T) {
	const maxConcurrent = 8
	h := startPipeline(t, fmt.Sprintf("listen: 127.0.0.1:0\nmax_concurrent: %d\nread_timeout: 2m\nmax_body_bytes: 16KiB\nsendgrid: {public_key: \"${SENDGRID_KEY}\"}\n", maxConcurrent), nil)
	addr := h.src.Addr().String()
	for i := range maxConcurrent + 4 {
		t.Logf("trickler %d", i)
		trickle(t, addr, "/webhooks/sendgrid", 1000, []byte("["))
	}
	body := fmt.Appendf(nil, `[{"email":"a@b.c","timestamp":%d,"event":"open","sg_event_id":"sg-signed"}]`, time.Now().Unix())
	if got := h.post(t, "/webhooks/sendgrid", body, sendgridHeaders(t, sendgridKey(), time.Now(), body)); got != 200 {
		t.Fatalf("signed request: status %d, want 200", got)
	}
}

// What bodies hold is bounded by max_concurrent × max_body_bytes: a body
// that took it all makes the next request 503, until it is gone.
func TestBodyBytesBounded(t *testing.T) {
	h := startPipeline(t, "listen: 127.0.0.1:0\nmax_concurrent: 1\nread_timeout: 2m\nmax_body_bytes: 16KiB\nsendgrid: {public_key: \"${SENDGRID_KEY}\"}\n", nil)
	c := trickle(t, h.src.Addr().String(), "/webhooks/sendgrid", 16000, []byte("["+strings.Repeat(" ", 12000)))
	waitFor(t, "the trickled body to be read", func() bool {
		return pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_body_bytes", nil) >= 12000
	})
	body := fmt.Appendf(nil, `[{"email":"a@b.c","timestamp":%d,"event":"open","sg_event_id":"sg-b"}]`, time.Now().Unix())
	hdr := sendgridHeaders(t, sendgridKey(), time.Now(), body)
	if got := h.post(t, "/webhooks/sendgrid", body, hdr); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d with the body budget used up, want 503", got)
	}
	c.Close()
	waitFor(t, "the trickled body to be released", func() bool {
		return pipelinetest.MetricSum(t, h.metrics, "sluice_webhook_body_bytes", nil) == 0
	})
	if got := h.post(t, "/webhooks/sendgrid", body, hdr); got != 200 {
		t.Fatalf("status %d once the budget is free, want 200", got)
	}
}

// waitFor polls cond with a generous bound that only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
