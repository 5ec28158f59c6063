package vendorreplay

import (
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
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Keys are the signing keys of one replay, made fresh for it: the
// providers' real keys never leave the providers, so a replay signs the
// recorded bodies again, the way each provider signs.
type Keys struct {
	sendgrid *ecdsa.PrivateKey
	mailgun  string
	sns      *rsa.PrivateKey
	snsCert  []byte // PEM
}

// NewKeys makes a SendGrid ECDSA P-256 key, a Mailgun signing key and an
// SNS RSA key with a self-signed certificate valid for a day.
func NewKeys() (*Keys, error) {
	sg, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sendgrid key: %w", err)
	}
	sn, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("sns key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &sn.PublicKey, sn)
	if err != nil {
		return nil, fmt.Errorf("sns certificate: %w", err)
	}
	return &Keys{sendgrid: sg, mailgun: "key-demo-" + strings.ToLower(rand.Text()), sns: sn, snsCert: pemCert(der)}, nil
}

// SendGridPublicKey is the verification key as SendGrid's settings page
// shows it: base64 of the PKIX DER public key.
func (k *Keys) SendGridPublicKey() string {
	der, err := x509.MarshalPKIXPublicKey(&k.sendgrid.PublicKey)
	if err != nil { // cannot happen for a P-256 key
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// MailgunSigningKey is the HTTP webhook signing key.
func (k *Keys) MailgunSigningKey() string { return k.mailgun }

// signSendGrid signs SHA-256(timestamp + body) with ECDSA, ASN.1 DER,
// base64: the X-Twilio-Email-Event-Webhook-Signature header.
func (k *Keys) signSendGrid(timestamp string, body []byte) (string, error) {
	h := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.sendgrid, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// signMailgun replaces the body's signature block with a fresh timestamp,
// token and hex HMAC-SHA256(timestamp + token). A delivery is signed once:
// its retries resend the same bytes, as Mailgun's retries may.
func (k *Keys) signMailgun(body []byte, at time.Time) ([]byte, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	token := strings.ToLower(rand.Text() + rand.Text())[:50]
	m := hmac.New(sha256.New, []byte(k.mailgun))
	m.Write([]byte(ts + token))
	out, err := sjson.SetBytes(body, "signature.timestamp", ts)
	if err == nil {
		out, err = sjson.SetBytes(out, "signature.token", token)
	}
	if err == nil {
		out, err = sjson.SetBytes(out, "signature.signature", hex.EncodeToString(m.Sum(nil)))
	}
	return out, err
}

// signSNS sets Signature over SNS's canonical string (the message's
// fields in the documented order) with SHA1withRSA for SignatureVersion 1
// and SHA256withRSA for 2.
func (k *Keys) signSNS(body []byte) ([]byte, error) {
	m := gjson.ParseBytes(body)
	typ := m.Get("Type").String()
	var fields []string
	switch typ {
	case "Notification":
		fields = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		fields = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	default:
		return nil, fmt.Errorf("SNS message Type %q", typ)
	}
	var b strings.Builder
	for _, f := range fields {
		if v := m.Get(f); v.Exists() && v.Type != gjson.Null {
			b.WriteString(f + "\n" + v.String() + "\n")
		}
	}
	var sig []byte
	var err error
	switch m.Get("SignatureVersion").String() {
	case "1":
		d := sha1.Sum([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.sns, crypto.SHA1, d[:])
	case "2":
		d := sha256.Sum256([]byte(b.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.sns, crypto.SHA256, d[:])
	default:
		return nil, fmt.Errorf("SNS SignatureVersion %q", m.Get("SignatureVersion").String())
	}
	if err != nil {
		return nil, err
	}
	return sjson.SetBytes(body, "Signature", base64.StdEncoding.EncodeToString(sig))
}
