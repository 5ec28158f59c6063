package vendorreplay

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

var snsHost = regexp.MustCompile(`^sns\.[a-z]{2}(-[a-z]+)+-[0-9]+\.amazonaws\.com$`)

// AWS stands in for the two SNS endpoints the webhooks source calls: the
// signing certificate at SigningCertURL and the SubscribeURL that confirms
// a subscription. Give the webhooks source an http.Client with AWS as its
// Transport; the source still checks every URL is
// https://sns.<region>.amazonaws.com/ before it asks.
type AWS struct {
	cert []byte

	mu            sync.Mutex
	confirmations []string
}

// AWS serves this replay's SNS signing certificate.
func (k *Keys) AWS() *AWS { return &AWS{cert: k.snsCert} }

// RoundTrip answers GETs to sns.<region>.amazonaws.com and refuses
// anything else, so a demo never reaches the network.
func (a *AWS) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	if r.Method != http.MethodGet || r.URL.Scheme != "https" || !snsHost.MatchString(r.URL.Hostname()) {
		return nil, fmt.Errorf("vendorreplay: %s %s is not an SNS endpoint the replay serves", r.Method, r.URL)
	}
	respond := func(status int, ctype string, body []byte) (*http.Response, error) {
		return &http.Response{
			StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
			Header: http.Header{"Content-Type": {ctype}}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}, nil
	}
	switch {
	case strings.HasSuffix(r.URL.Path, ".pem"):
		return respond(http.StatusOK, "application/x-x509-ca-cert", a.cert)
	case r.URL.Query().Get("Action") == "ConfirmSubscription":
		a.mu.Lock()
		a.confirmations = append(a.confirmations, r.URL.Query().Get("TopicArn"))
		a.mu.Unlock()
		return respond(http.StatusOK, "text/xml", []byte(`<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ConfirmSubscriptionResult><SubscriptionArn>`+
			r.URL.Query().Get("TopicArn")+`:demo-subscription</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`))
	}
	return respond(http.StatusNotFound, "text/plain", []byte("not found"))
}

// Confirmations lists the topics whose subscriptions were confirmed.
func (a *AWS) Confirmations() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.confirmations...)
}
