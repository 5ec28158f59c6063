package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kafkasource "github.com/sluicehq/sluice/sources/kafka"
)

// TestReadsOverTLSWithSASL: the source joins its group and reads every
// record from brokers that take only TLS connections authenticated with
// SCRAM-SHA-512 (the in-process cluster; the test stack's Kafka listens in
// plain text): the group's, the lag poll's and the partitions' fetch
// connections (those read through the source's own buffer under TLS) all
// handshake and authenticate.
func TestReadsOverTLSWithSASL(t *testing.T) {
	const topic, user, pass = "secure.events", "sluice", "s3cret-pa55"
	serverCert, caFile := selfSignedLoopbackCert(t)
	brokers := testenv.StartKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(3, topic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))

	// Produce over TLS + SCRAM too.
	pool := x509.NewCertPool()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pemBytes)
	mech, err := scram.Mechanism(scram.SHA512, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll,
		Transport: &kafkago.Transport{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, SASL: mech}}
	defer w.Close()
	var msgs []kafkago.Message
	for i := range 300 {
		msgs = append(msgs, kafkago.Message{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, `{"id":"r%d","seq":%d}`, i, i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce over TLS: %v", err)
	}

	sink := &pipelinetest.Sink{}
	reg := pipeline.NewRegistry()
	kafkasource.Register(reg)
	pipelinetest.Register(reg, pipelinetest.NewSource(), sink)
	doc := fmt.Sprintf(`name: secure
source:
  kafka:
    brokers: [%q]
    topic: %s
    group: secure
    tls: {enabled: true, ca_file: %q}
    sasl: {mechanism: scram-sha-512, username: %s, password: %q}
sinks: [{mem: {index: 0}}]
`, brokers[0], topic, caFile, user, pass)
	run := pipelinetest.Start(t, "secure.yaml", doc, reg)
	defer func() {
		if err := run.Stop(t); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testwait.For(t, "the 300 records over TLS", func() bool { return len(bodyIDs(sink)) == 300 },
		func() string { return fmt.Sprintf("%d read", len(bodyIDs(sink))) })
	for id, n := range bodyIDs(sink) {
		if n != 1 {
			t.Errorf("record %s read %d times", id, n)
		}
	}
}

// selfSignedLoopbackCert makes a certificate for 127.0.0.1 that is its
// own CA, and writes the CA's PEM to a file.
func selfSignedLoopbackCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test broker"},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), // valid whenever the test runs
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
