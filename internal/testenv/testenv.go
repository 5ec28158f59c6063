// Package testenv gives tests the addresses of the local test servers
// started by `make testenv` (see README.md in this directory), and can start
// an in-process Kafka-compatible cluster for a single test.
//
// Each address helper reads its environment variable; when that is unset it
// falls back to the .testenv/env file written by `make testenv`, found by
// walking up from the working directory to the module root. When the server
// is not configured or does not accept a TCP connection within two seconds the
// test is skipped, or fails when SLUICE_TESTENV_REQUIRED=1 (as `make test`
// sets it).
package testenv

import (
	"bufio"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables read by the helpers; `make testenv` writes them to
// .testenv/env.
const (
	EnvKafkaBrokers    = "SLUICE_KAFKA_BROKERS"    // comma-separated host:port list
	EnvKafkaImpl       = "SLUICE_KAFKA_IMPL"       // kafka (real Apache Kafka) or kfake
	EnvKinesisEndpoint = "SLUICE_KINESIS_ENDPOINT" // http://host:port
	EnvMongoURI        = "SLUICE_MONGO_URI"        // mongodb://host:port/
	EnvESURL           = "SLUICE_ES_URL"           // http://host:port (OpenSearch), or http://host:port/es (ZincSearch)
	EnvESFlavor        = "SLUICE_ES_FLAVOR"        // opensearch or elasticsearch: the sink's flavor for that server
	EnvESUsername      = "SLUICE_ES_USERNAME"
	EnvESPassword      = "SLUICE_ES_PASSWORD"
	EnvRedisAddr       = "SLUICE_REDIS_ADDR" // host:port

	// EnvRequired, when "1", turns a missing or unreachable server into a
	// test failure instead of a skip.
	EnvRequired = "SLUICE_TESTENV_REQUIRED"
)

// dialTimeout bounds the reachability check of each server.
const dialTimeout = 2 * time.Second

var (
	envFileOnce sync.Once
	envFileVals map[string]string
)

// Lookup returns the value of an environment variable, falling back to the
// .testenv/env file written by `make testenv` only when the variable is not
// set at all: a variable set empty (SLUICE_ES_USERNAME= for a server without
// credentials) is not replaced by another stack's file.
func Lookup(key string) (string, bool) {
	if v, set := os.LookupEnv(key); set {
		return v, v != ""
	}
	envFileOnce.Do(loadEnvFile)
	v, ok := envFileVals[key]
	return v, ok && v != ""
}

func loadEnvFile() {
	envFileVals = map[string]string{}
	if dir, err := os.Getwd(); err == nil {
		envFileVals = readEnvFileFrom(dir)
	}
}

// readEnvFileFrom reads the first .testenv/env found walking up from dir,
// stopping at the directory holding go.mod. It returns an empty map when there
// is none.
func readEnvFileFrom(dir string) map[string]string {
	for {
		if f, err := os.Open(filepath.Join(dir, ".testenv", "env")); err == nil {
			defer f.Close()
			return parseEnvFile(f)
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return map[string]string{}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return map[string]string{}
		}
		dir = parent
	}
}

// parseEnvFile parses `export KEY=VALUE` / `KEY=VALUE` lines; blank lines and
// comments are ignored and surrounding single or double quotes are removed.
func parseEnvFile(r io.Reader) map[string]string {
	vals := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vals[strings.TrimSpace(k)] = v
	}
	return vals
}

// unavailable skips the test, or fails it when SLUICE_TESTENV_REQUIRED=1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	format += "; start the local test servers with `make testenv`"
	if os.Getenv(EnvRequired) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// need returns the value of key or skips/fails the test.
func need(t testing.TB, key, what string) string {
	t.Helper()
	v, ok := Lookup(key)
	if !ok {
		unavailable(t, "%s: %s is not set and no .testenv/env provides it", what, key)
	}
	return v
}

// reachable skips/fails the test unless addr accepts a TCP connection.
func reachable(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		unavailable(t, "%s at %s is not reachable: %v", what, addr, err)
		return
	}
	c.Close()
}

// hostOfURL returns host:port of an http(s) URL, defaulting the port.
func hostOfURL(t testing.TB, what, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: bad URL %q: %v", what, raw, err)
	}
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// KafkaBrokers returns the brokers of the shared Kafka server (real Apache
// Kafka, one broker by default; or kfake when the stack was started with
// SLUICE_TESTENV_KAFKA=kfake). Tests that only need some Kafka should prefer
// StartKafka; RealKafkaBrokers is for tests that need the real broker.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := need(t, EnvKafkaBrokers, "Kafka")
	var brokers []string
	for _, b := range strings.Split(v, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		unavailable(t, "Kafka: %s=%q lists no broker", EnvKafkaBrokers, v)
	}
	reachable(t, "Kafka broker", brokers[0])
	return brokers
}

// RealKafkaBrokers is KafkaBrokers for tests that only a real Apache Kafka
// broker can answer. When the shared stack runs kfake instead
// (SLUICE_KAFKA_IMPL=kfake) the test is skipped: that stand-in was chosen on
// purpose, so it is not a missing server.
func RealKafkaBrokers(t testing.TB) []string {
	t.Helper()
	brokers := KafkaBrokers(t)
	if impl, _ := Lookup(EnvKafkaImpl); impl != "kafka" {
		t.Skipf("needs a real Kafka broker; the test stack runs %q (%s)", impl, EnvKafkaImpl)
	}
	return brokers
}

// KinesisEndpoint returns the endpoint URL of the Kinesis-compatible server
// (kinesalite). Any static credentials and region are accepted.
func KinesisEndpoint(t testing.TB) string {
	t.Helper()
	v := need(t, EnvKinesisEndpoint, "Kinesis")
	reachable(t, "Kinesis", hostOfURL(t, "Kinesis", v))
	return v
}

// MongoURI returns the connection URI of the MongoDB-wire-compatible server
// (FerretDB with SQLite).
func MongoURI(t testing.TB) string {
	t.Helper()
	v := need(t, EnvMongoURI, "MongoDB")
	hosts := strings.TrimPrefix(v, "mongodb://")
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		hosts = hosts[i+1:]
	}
	if i := strings.IndexAny(hosts, "/?"); i >= 0 {
		hosts = hosts[:i]
	}
	host, _, _ := strings.Cut(hosts, ",")
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "27017")
	}
	reachable(t, "MongoDB", host)
	return v
}

// ElasticsearchURL returns the base URL, user name and password of the
// Elasticsearch-API server: OpenSearch by default (no credentials: its
// security plugin is absent), or ZincSearch (under /es, with basic auth) when
// the stack was started with SLUICE_TESTENV_ES=zinc. ElasticsearchFlavor
// says which flavor the sink must be configured with.
func ElasticsearchURL(t testing.TB) (esURL, username, password string) {
	t.Helper()
	esURL = need(t, EnvESURL, "Elasticsearch")
	username, _ = Lookup(EnvESUsername)
	password, _ = Lookup(EnvESPassword)
	reachable(t, "Elasticsearch", hostOfURL(t, "Elasticsearch", esURL))
	return esURL, username, password
}

// ElasticsearchFlavor returns the Elasticsearch sink flavor for the server
// of ElasticsearchURL: "opensearch" for the default stack, "elasticsearch"
// for ZincSearch (which answers as Elasticsearch 8) or when unknown.
func ElasticsearchFlavor() string {
	if v, ok := Lookup(EnvESFlavor); ok {
		return v
	}
	return "elasticsearch"
}

// OpenSearchURL is ElasticsearchURL for tests that only a real engine can
// answer (refresh, the Count API, 409 on create, mapping conflicts). When the
// shared stack runs ZincSearch instead the test is skipped.
func OpenSearchURL(t testing.TB) string {
	t.Helper()
	esURL, _, _ := ElasticsearchURL(t)
	if f := ElasticsearchFlavor(); f != "opensearch" {
		t.Skipf("needs a real OpenSearch node; the test stack's Elasticsearch API is flavor %q (%s)", f, EnvESFlavor)
	}
	return esURL
}

// RedisAddr returns the host:port of the Redis server.
func RedisAddr(t testing.TB) string {
	t.Helper()
	v := need(t, EnvRedisAddr, "Redis")
	reachable(t, "Redis", v)
	return v
}

// StartKafkaCluster starts an in-process, in-memory Kafka-compatible cluster
// (three brokers on random loopback ports unless opts say otherwise) that is
// closed when the test ends.
func StartKafkaCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting in-process kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// StartKafka is StartKafkaCluster returning only the broker addresses.
func StartKafka(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	return StartKafkaCluster(t, opts...).ListenAddrs()
}
