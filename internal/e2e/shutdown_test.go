package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/kafkagroup"
	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
)

// scrape sums the counter or gauge name over the series whose component
// label ends with component, from a child's /metrics.
func scrape(addr, name, component string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	if f := fams[name]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "component" && strings.HasSuffix(l.GetValue(), component) {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return sum, nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func produceJSON(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll, BatchTimeout: 2 * time.Millisecond}
	defer w.Close()
	msgs := make([]kafkago.Message, 0, n)
	for i := from; i < from+n; i++ {
		b, _ := json.Marshal(map[string]any{"id": "s" + strconv.Itoa(i), "seq": i})
		msgs = append(msgs, kafkago.Message{Key: []byte("k" + strconv.Itoa(i%29)), Value: b})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

var runSummary = regexp.MustCompile(`(\d+) events read in .*: (\d+) written, (\d+) dropped, (\d+) dead-lettered, (\d+) abandoned unacked`)

// TestSIGTERMWithAStalledStore runs `sluice run` (Kafka → MongoDB, the
// store behind a proxy the test stalls) as a child: after SIGTERM it exits
// 0 without waiting for the store (whose write_timeout and the source's
// rebalance_drain are a minute and more), and its summary accounts for
// every record the source handed over: read = written + dropped +
// dead-lettered + abandoned, with the records read before the stall
// written and committed, and those read during it abandoned, uncommitted.
// One scenario, read top to bottom: longer than 80 lines on purpose.
func TestSIGTERMWithAStalledStore(t *testing.T) {
	const before, during, partitions = 300, 400, 3
	const shutdownTimeout = 3 * time.Second
	brokers := testenv.KafkaBrokers(t)
	mongoURI := testenv.MongoURI(t)
	upstream := strings.TrimPrefix(mongoURI, "mongodb://")
	upstream, _, _ = strings.Cut(upstream, "/")
	if strings.ContainsAny(upstream, "@,?") {
		t.Skipf("the proxy needs a single host without credentials; %s is %q", testenv.EnvMongoURI, mongoURI)
	}
	proxy := startStallProxy(t, upstream)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "sluice-sigterm-"+suffix, "sluice-sigterm-"+suffix+"-g"
	admin := kafkagroup.NewClient(brokers, nil)
	resp, err := admin.CreateTopics(context.Background(), &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.DeleteTopics(context.Background(), &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	})

	metricsAddr := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sigterm.yaml")
	doc := fmt.Sprintf(`name: sigterm
source:
  kafka:
    brokers: [%q]
    topic: %s
    group: %s
    start: earliest
    commit_interval: 100ms
    rebalance_drain: 2m
transforms:
  - decode: {format: json, id: id}
sinks:
  - mongodb:
      uri: "mongodb://%s/?directConnection=true"
      database: sigterm_%s
      collection: events
      write_timeout: 2m
batch: {max_events: 50, max_wait: 5ms}
delivery: {lanes: 4, max_in_flight: 64, shutdown_timeout: %s}
metrics: {listen: %q}
`, strings.Join(brokers, ","), topic, group, proxy.addr(), suffix, shutdownTimeout, metricsAddr)
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := buildSluice(t)
	c := startChild(t, bin, "run", "-c", cfg)
	metric := func(name, component string) float64 {
		v, _ := scrape(metricsAddr, name, component)
		return v
	}
	committed := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Bound())
		defer cancel()
		p, err := kafkagroup.Read(ctx, admin, group, topic)
		if err != nil {
			return -1
		}
		return p.Committed()
	}
	state := func() string {
		return fmt.Sprintf("read %v, written %v, committed %d\n%s", metric("sluice_events_out_total", "source.kafka"),
			metric("sluice_events_out_total", ".mongodb"), committed(), tail(c.stderr.String(), 30))
	}

	produceJSON(t, brokers, topic, 0, before)
	testwait.For(t, "the first records written and committed", func() bool {
		return metric("sluice_events_out_total", ".mongodb") == before && committed() == before
	}, state)
	proxy.stall()
	produceJSON(t, brokers, topic, before, during)
	testwait.For(t, "the records produced during the stall handed to the pipeline", func() bool {
		return metric("sluice_events_out_total", "source.kafka") == before+during
	}, state)

	sent := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The bound catches a shutdown that waits for the store or the drain
	// (2 min each), with room for a slow machine; the contract is
	// shutdown_timeout + 1 s.
	if !c.wait(30 * time.Second) {
		t.Fatalf("no exit within 30 s of SIGTERM (shutdown_timeout %s):\n%s", shutdownTimeout, c.dump())
	}
	elapsed := time.Since(sent)
	if c.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", c.err, tail(c.stderr.String(), 50))
	}
	t.Logf("exited %s after SIGTERM (shutdown_timeout %s + 1 s = %s)", elapsed.Round(time.Millisecond), shutdownTimeout, shutdownTimeout+time.Second)
	m := runSummary.FindStringSubmatch(c.stdout.String())
	if m == nil {
		t.Fatalf("no summary on stdout %q; stderr:\n%s", c.stdout.String(), tail(c.stderr.String(), 30))
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	read, written, dropped, dead, abandoned := n(m[1]), n(m[2]), n(m[3]), n(m[4]), n(m[5])
	t.Logf("summary: %s", m[0])
	if read != written+dropped+dead+abandoned {
		t.Fatalf("summary does not add up: %s", m[0])
	}
	if read != before+during || written != before || abandoned != during || dropped != 0 || dead != 0 {
		t.Fatalf("summary %q: want %d read = %d written + %d abandoned", m[0], before+during, before, during)
	}
	if got := committed(); got != before {
		t.Fatalf("committed %d records after the shutdown, want the %d written before the stall", got, before)
	}
}
